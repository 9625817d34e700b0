"""Retention on both backends with a controlled clock: each kind of personal data goes when its time comes, not
before; a dry run counts and deletes nothing; the command line does the same."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from config import Settings
from notify.outbox import Outbox
from passerelle.cli import main
from rooms import ConferenceDraft, Rooms
from rooms.db import session_factory
from rooms.models import AuditEvent, Channel, FailedAttempt, Invitee, OutboxMessage
from rooms.retention import Retention
from rooms.throttle import Key
from tests.conftest import FakeClock


def count(engine: Engine, table: type) -> int:
    with session_factory(engine)() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_each_kind_goes_when_its_time_comes(settings: Settings, rooms: Rooms, engine: Engine, clock: FakeClock) -> None:
    r = settings.retention
    start = clock.now + timedelta(hours=1)
    past = rooms.create_conference(ConferenceDraft(name="Consultation", start=start, end=start + timedelta(hours=1)))
    rooms.add_invitee(past.id, "email", "anne.petit@example.org", send_now=False)
    rooms.add_invitee(past.id, "phone", "06 11 22 33 44", send_now=False)
    open_room = rooms.create_conference(ConferenceDraft(name="Ouverte"))
    rooms.add_invitee(open_room.id, "email", "paul.roux@example.org", send_now=False)
    outbox = Outbox(rooms.sessions, settings.retry, now=clock)
    sent = outbox.enqueue(Channel.EMAIL, "someone@example.org", b"invitation")
    outbox.sent(sent)
    outbox.enqueue(Channel.SMS, "+33611223344", b"pending: kept until sent")
    rooms.code_limits.throttle.record_failure([Key("caller:+33612345678", rooms.code_limits.caller)])
    retention = Retention(rooms.sessions, settings, clock)

    assert retention.purge() == {"outbox": 0, "invitees": 0, "chat_messages": 0, "room_files": 0, "room_boards": 0,
                                 "audit_events": 0, "failed_attempts": 0, "throttle_gates": 0, "web_sessions": 0,
                                 "cancelled_links": 0, "room_file_bytes": 0}  # fmt: skip

    clock.advance(timedelta(seconds=settings.limits.failures_window_s + 1))
    assert retention.purge()["failed_attempts"] == 1
    clock.advance(timedelta(days=r.outbox_days))
    assert retention.purge()["outbox"] == 1, "a sent message goes; a pending one stays"
    assert count(engine, OutboxMessage) == 1
    closed = start + timedelta(hours=1, minutes=settings.schedule.grace_after_min)  # its window's close
    clock.now = closed + timedelta(days=r.invitees_days, minutes=-1)
    assert retention.purge(dry_run=True)["invitees"] == 0, "not before the window has been closed invitees_days"
    clock.advance(timedelta(minutes=2))
    assert retention.purge(dry_run=True)["invitees"] == 2
    assert count(engine, Invitee) == 3, "a dry run deletes nothing"
    assert retention.purge()["invitees"] == 2
    assert [i.address for i in rooms.list_invitees(open_room.id)] == ["paul.roux@example.org"], "open rooms keep theirs"
    assert rooms.get_conference(past.id).name == "Consultation", "the conference itself stays"
    audits = count(engine, AuditEvent)
    clock.advance(timedelta(days=r.audit_days))
    assert retention.purge()["audit_events"] == audits
    assert count(engine, FailedAttempt) == 0
    rooms.chat.send(open_room.id, "Anne", "web-1", "J'ai mal au dos depuis lundi")
    clock.advance(timedelta(days=r.chat_days, minutes=-1))
    assert retention.purge()["chat_messages"] == 0, "not before chat_days"
    clock.advance(timedelta(minutes=2))
    assert retention.purge()["chat_messages"] == 1


def test_purge_from_the_command_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.setenv("PASSERELLE_DATABASE__URL", database_url)
    if database_url.startswith("postgresql"):
        assert main(["db", "upgrade"]) == 0
    assert main(["conference", "create", "--name", "X"]) == 0
    capsys.readouterr()
    assert main(["purge", "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True
    assert set(out) == {"dry_run", "outbox", "invitees", "chat_messages", "room_files", "room_boards", "audit_events",
                        "failed_attempts", "throttle_gates", "web_sessions", "cancelled_links"}  # fmt: skip
    assert main(["purge"]) == 0
