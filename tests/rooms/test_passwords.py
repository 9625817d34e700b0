"""Local accounts' passwords on SQLite and PostgreSQL: argon2id, never stored as typed; a wrong password, an unknown
user and an account without a password all give nothing; weak passwords are refused; the CLI reads it from stdin."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from passerelle.cli import main
from rooms import Rooms
from rooms.errors import ValidationError
from rooms.models import User

PASSWORD = "correct horse battery staple"


def stored_hash(engine: Engine, username: str) -> str | None:
    with Session(engine) as session:
        return session.scalar(select(User.password_hash).where(User.username == username))


def test_set_and_check(rooms: Rooms, engine: Engine) -> None:
    rooms.create_user("dr.martin", "Dr Martin")
    rooms.create_user("sso.only", "Signs in through the portal")
    rooms.set_password("dr.martin", PASSWORD)
    digest = stored_hash(engine, "dr.martin") or ""
    assert digest.startswith("$argon2id$")
    assert PASSWORD not in digest
    user = rooms.check_password("Dr.Martin ", PASSWORD)  # the user name as typed, in any case
    assert user is not None
    assert user.username == "dr.martin"
    assert rooms.check_password("dr.martin", PASSWORD + "!") is None
    assert rooms.check_password("nobody", PASSWORD) is None
    assert rooms.check_password("sso.only", PASSWORD) is None, "an account without a password cannot sign in"
    assert rooms.check_password("sso.only", "") is None


def test_weak_passwords_are_refused(rooms: Rooms) -> None:
    rooms.create_user("dr.martin", "Dr Martin")
    for weak in ("short", " " * 20, "x" * 1025):
        with pytest.raises(ValidationError, match="password"):
            rooms.set_password("dr.martin", weak)


def test_cli_reads_the_password_from_stdin(
    rooms: Rooms, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rooms.create_user("dr.martin", "Dr Martin")
    monkeypatch.setenv("PASSERELLE_DATABASE__URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["user", "password", "dr.martin"]) == 0
    assert "password of dr.martin set" in capsys.readouterr().out
    assert rooms.check_password("dr.martin", PASSWORD) is not None
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "password", "dr.martin"]) != 0
    assert "password" in capsys.readouterr().err
