"""Personal data never reaches what the process writes, even when the database fails on it."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from passerelle.logs import HidePersonalData
from rooms.db import make_engine, upgrade
from tests.cli.test_serve import env_for

NAME, NUMBER = "Mme Jeanne Dupont", "0612345678"
SHOWN = ("Jeanne", "612345678", "6 12 34 56 78", "33612345678")


def sabotage(engine: Engine) -> None:
    """A write of a user fails on the database's side, in the way that quotes a value where it can."""
    with engine.begin() as db:
        if engine.dialect.name == "postgresql":  # "invalid input syntax for type date: "+33612345678""
            db.execute(text("ALTER TABLE users ALTER COLUMN phone_e164 TYPE date USING NULL"))
        else:
            db.execute(text("ALTER TABLE users RENAME COLUMN timezone TO time_zone"))


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_failed_write_leaves_no_personal_data_in_anything_written(
    database_url: str, tmp_path: Path, log_format: str
) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sabotage(engine)
    engine.dispose()
    proc = subprocess.run(
        ["passerelle", "--log-format", log_format, "user", "create", "--username", "j.dupont", "--name", NAME,
         "--phone", NUMBER],
        env=env_for(tmp_path, PASSERELLE_DATABASE__URL=database_url), cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    written = proc.stdout + proc.stderr
    assert proc.returncode == 1, written
    assert "the database failed" in proc.stderr
    assert "hidden" in proc.stderr
    for value in SHOWN:
        assert value not in written, f"{value!r} was written:\n{written}"
    if log_format == "json":  # one object a line, the traceback in it, the values still hidden
        entries = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
        failed = [e for e in entries if e["message"] == "the database failed"]
        assert len(failed) == 1, proc.stderr
        assert failed[0]["level"] == "ERROR"
        assert failed[0]["logger"] == "passerelle"
        assert "hidden" in failed[0]["exception"]
        assert failed[0]["time"].endswith("+00:00")


def test_the_log_filter_hides_what_the_server_quotes(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    sabotage(engine)
    statement = text("insert into users (id, username, display_name, phone_e164, language, timezone, created_at) "
                     "values (:id, 'x', :name, :phone, 'fr', 'Europe/Paris', CURRENT_TIMESTAMP)")  # fmt: skip
    values = {"id": "8f8c8a4e-6d55-4b8e-9a55-2f4a9c1b0d11", "name": NAME, "phone": "+33" + NUMBER[1:]}
    log = logging.getLogger("tests.privacy")
    handler = logging.StreamHandler()
    handler.addFilter(HidePersonalData())
    records: list[str] = []
    handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        with pytest.raises(SQLAlchemyError) as failed, engine.begin() as db:
            db.execute(statement, values)  # (the traceback shows this line: no value written in it)
        try:
            raise failed.value
        except SQLAlchemyError:
            log.exception("a write failed")
    finally:
        log.removeHandler(handler)
    assert records, "nothing was logged"
    assert "hidden" in records[0]
    for value in SHOWN:
        assert value not in records[0], f"{value!r} is in the log"


def test_a_repeated_warning_is_held_back_then_counted() -> None:
    from passerelle.logs import RepeatLimiter

    now = [0.0]
    limiter = RepeatLimiter(burst=5, window_s=60, clock=lambda: now[0])
    log = logging.getLogger("bridge.rtp.session")
    handler = logging.StreamHandler()
    handler.addFilter(limiter)
    lines: list[str] = []
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log.addHandler(handler)
    try:
        for seq in range(1500):  # garbage RTP: one warning a packet, each with its own numbers
            log.warning("rtp: packet %d from port %d: unknown payload type %d", seq, 30000 + seq, seq % 128)
        log.warning("another kind of warning")
        now[0] = 61.0
        log.warning("rtp: packet %d from port %d: unknown payload type %d", 1, 30001, 1)
    finally:
        log.removeHandler(handler)
    assert len(lines) == 7, lines
    assert lines[5] == "another kind of warning"
    assert "1495 more like it" in lines[6]
