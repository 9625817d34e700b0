from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from passerelle.cli import main
from rooms import codes

Run = Callable[..., tuple[int, str, str]]
CREATE_KEYS = {"id", "code", "entry_code", "join_url", "host_url", "dial_in", "opens_at", "closes_at"}


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Run:
    monkeypatch.setenv("PASSERELLE_DATABASE__URL", database_url)
    monkeypatch.chdir(tmp_path)
    if database_url.startswith("postgresql"):
        assert main(["db", "upgrade"]) == 0
        capsys.readouterr()

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _conferences(cli: Run) -> list[dict[str, object]]:
    status, out, _ = cli("conference", "list", "--all", "--json")
    assert status == 0
    data: list[dict[str, object]] = json.loads(out)
    return data


def test_cli_conference_create_json_is_stable(cli: Run) -> None:
    # The CLI judges a schedule against the real clock: a day in next year's winter (CET, +01:00) is always ahead.
    day = f"{datetime.now(UTC).year + 1}-12-01"
    status, out, err = cli(
        "conference", "create", "--name", "Consultation", "--entry-code", "0042",
        "--start", f"{day}T09:00", "--end", f"{day}T09:30", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert set(data) == CREATE_KEYS
    assert codes.is_well_formed(data["code"])
    assert data["entry_code"] == "0042"
    assert re.fullmatch(r"http://localhost:8080/c/[A-Za-z0-9_-]{22}", data["join_url"])
    assert data["dial_in"] == [{"number_e164": "+33491000000", "display": "+33 4 91 00 00 00"}]
    assert data["opens_at"] == f"{day}T08:50:00+01:00"
    assert data["closes_at"] == f"{day}T09:45:00+01:00"


def test_cli_open_conference_json(cli: Run) -> None:
    status, out, _ = cli("conference", "create", "--name", "Open", "--open", "--json")
    data = json.loads(out)
    assert status == 0
    assert data["entry_code"] is None
    assert data["opens_at"] is None
    assert data["closes_at"] is None


def test_cli_list_show_delete(cli: Run) -> None:
    _, out, _ = cli("conference", "create", "--name", "Réunion d'équipe", "--json")
    made = json.loads(out)
    assert [c["id"] for c in _conferences(cli)] == [made["id"]]
    status, out, _ = cli("conference", "show", made["id"])
    assert status == 0
    assert "Réunion d'équipe" in out
    assert codes.format_code(made["code"]) + " #" in out
    assert "+33 4 91 00 00 00" in out
    assert cli("conference", "delete", made["id"])[0] == 0
    assert _conferences(cli) == []
    status, _, err = cli("conference", "show", made["id"])
    assert status == 2
    assert err == f"passerelle: error: no conference {made['id']}\n"


def test_cli_user_and_personal_room(cli: Run) -> None:
    status, out, _ = cli("user", "create", "--username", "alice", "--name", "Alice", "--json")
    assert status == 0
    assert json.loads(out)["username"] == "alice"
    _, out, _ = cli("conference", "personal", "alice", "--json")
    room = json.loads(out)
    assert room["kind"] == "personal"
    _, out, _ = cli("conference", "personal", "alice", "--json")
    assert json.loads(out)["code"] == room["code"]
    _, out, _ = cli("conference", "personal", "alice", "--regenerate-code", "--json")
    fresh = json.loads(out)
    assert fresh["code"] != room["code"]
    assert fresh["join_url"] == room["join_url"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["conference", "create", "--name", "X", "--start", "2026-12-01T09:00"], "--start and --end go together"),
        (["conference", "create", "--name", "X", "--open", "--start", "2026-12-01T09:00"], "not allowed with"),
        (["conference", "create", "--name", "X", "--entry-code", "12"], "entry_code: expected 4 to 8 digits"),
        (
            ["conference", "create", "--name", "X", "--start", "2026-12-01T10:00", "--end", "2026-12-01T09:00"],
            "end: the end must come after the start",
        ),
        (["conference", "create", "--name", "X", "--timezone", "Mars/Olympus"], "timezone: unknown timezone"),
        (["conference", "create", "--name", "X", "--lobby", "never"], "argument --lobby: invalid choice"),
        (["conference", "create", "--name", "X", "--owner", "ghost"], "no user named 'ghost'"),
        (["conference", "create"], "the following arguments are required: --name"),
        (["conference", "show", "123"], "conference: expected a conference id"),
        (["user", "create", "--username", "bob", "--name", "Bob", "--phone", "12"], "phone: "),
        (["user", "create", "--username", "bob", "--name", "Bob", "--email", "bob@"], "email: expected an email"),
        (["frobnicate"], "argument COMMAND: invalid choice"),
    ],
)
def test_cli_bad_arguments_one_line_exit_2_nothing_written(cli: Run, argv: list[str], message: str) -> None:
    cli("user", "create", "--username", "alice", "--name", "Alice")
    before = _conferences(cli)
    status, out, err = cli(*argv)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("passerelle: error: ")
    assert message in err
    assert _conferences(cli) == before


def test_cli_duplicate_user(cli: Run) -> None:
    assert cli("user", "create", "--username", "alice", "--name", "Alice")[0] == 0
    status, _, err = cli("user", "create", "--username", "ALICE", "--name", "Alice 2")
    assert status == 2
    assert err == "passerelle: error: username: 'alice' is already taken\n"


def test_cli_config_show_masks_secrets(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSERELLE_SECURITY__SECRET_KEY", "do-not-print-me")
    status, out, _ = cli("config", "show")
    assert status == 0
    assert "do-not-print-me" not in out
    assert json.loads(out)["security"]["secret_key"] == "••••••"


def test_cli_bad_setting_one_line(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSERELLE_LOCALE__DEFAULT_LANGUAGE", "klingon")
    status, out, err = cli("conference", "list")
    assert (status, out) == (2, "")
    assert err == (
        'passerelle: error: locale.default_language: expected one of "fr", "en" '
        "(from environment variable PASSERELLE_LOCALE__DEFAULT_LANGUAGE; got 'klingon')\n"
    )
