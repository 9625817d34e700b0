"""The database's engine: private files, and personal data kept out of error messages (hence logs)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from rooms.db import make_engine, upgrade

PERSONAL = ("Mme Jeanne Dupont", "+33612345678")


def test_sqlite_file_and_folder_are_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'passerelle.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as db:
        db.execute(text("select 1"))
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "var").iterdir()}
    engine.dispose()
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert mode["passerelle.sqlite3"] == 0o600
    assert all(m == 0o600 for m in mode.values()), mode


def test_a_failed_write_never_shows_its_parameters(engine: Engine) -> None:
    statement = text("insert into users (id, username, display_name, phone_e164, language, timezone, created_at) "
                     "values (:id, :u, :name, :phone, 'fr', 'Europe/Paris', :at)")  # fmt: skip
    with pytest.raises(SQLAlchemyError) as failed, engine.begin() as db:
        # no id, no username: the write fails on both backends, with every parameter bound
        db.execute(statement, {"id": None, "u": None, "name": PERSONAL[0], "phone": PERSONAL[1],
                               "at": datetime.now(UTC)})  # fmt: skip
    message = str(failed.value)
    assert "hide_parameters" in message
    # PostgreSQL's own words quote the failing row ("DETAIL: Failing row contains …"): passerelle.logs keeps those
    # out of the log (tests/cli/test_privacy.py); what SQLAlchemy adds must not repeat the values.
    added = message if engine.dialect.name == "sqlite" else message.split("[SQL:", 1)[1]
    for value in PERSONAL:
        assert value not in added, f"{value!r} is in the error"
