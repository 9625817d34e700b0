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


def test_a_password_changed_while_it_was_being_checked_signs_nobody_in(rooms: Rooms) -> None:
    from rooms import passwords

    rooms.create_user("dr.martin", "Dr Martin")
    rooms.set_password("dr.martin", PASSWORD)

    def verify_while_it_changes(digest: str | None, password: str) -> bool:
        rooms.set_password("dr.martin", "another long passphrase")  # the owner changes it meanwhile
        return passwords.verify(digest, password)

    assert rooms.check_password("dr.martin", PASSWORD, verify_while_it_changes) is None
    assert rooms.check_password("dr.martin", "another long passphrase") is not None


def _niceness() -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, 0)


def _pid() -> int:
    import os

    return os.getpid()


def test_the_verifier_checks_in_worker_processes_below_the_media_clock() -> None:
    """argon2 away from the service's interpreter and at a lower priority than anything else it runs."""
    import os
    import signal

    from rooms.passwords import WORKER_NICE, Verifier, hasher

    digest = hasher().hash(PASSWORD)
    verifier = Verifier(workers=1)
    try:
        assert verifier.verify(digest, PASSWORD) is True
        assert verifier.verify(digest, PASSWORD + "!") is False
        assert verifier.verify(None, PASSWORD) is False  # no such account: the same work, never a match
        assert verifier.verify("not a hash", PASSWORD) is False
        worker = verifier.run(_pid)
        assert worker != os.getpid()
        assert verifier.run(_niceness) >= WORKER_NICE
        os.kill(worker, signal.SIGKILL)  # a worker dies (the OOM killer): another takes over
        assert verifier.verify(digest, PASSWORD) is True
        assert verifier.run(_pid) != worker
        verifier.close()
        verifier.close()  # twice: nothing happens
        assert verifier.verify(digest, PASSWORD) is True  # used again: workers again
    finally:
        verifier.close()
