"""The outbox on SQLite and PostgreSQL: due times, leases, backoff, giving up, the invitee's delivery state, a
restart in the middle; and the worker delivering to a real SMTP server process and the SMS gateway process."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from config import Settings, load_settings
from config.settings import RetrySettings
from notify.mail import compose
from notify.outbox import LEASE, Outbox, Wakeup, deliver_due, run
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory
from rooms.models import Channel, DeliveryState, OutboxState, utcnow
from tests.conftest import FakeClock
from tests.notify.test_mail import SENDER, invitation, received, smtp_server
from tests.notify.test_sms import gateway, sms_settings

RETRY = RetrySettings(max_attempts=3, backoff_initial_s=30, backoff_max_s=45)


def test_backoff_then_given_up_with_the_invitee_told(rooms: Rooms, engine: Engine, clock: FakeClock) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation"))
    invitee = rooms.add_invitee(conference.id, "email", "anne.petit@example.org")
    outbox = Outbox(session_factory(engine), RETRY, now=clock)
    first = outbox.enqueue(Channel.EMAIL, "anne.petit@example.org", b"x", invitee_id=invitee.id)
    later = outbox.enqueue(Channel.SMS, "+33612345678", b"y", not_before=clock.now + timedelta(hours=1))
    (due,) = outbox.due()
    assert due.id == first
    assert outbox.due() == [], "a message handed out is leased, not handed out twice"
    assert outbox.failed(first, "550 <anne.petit@example.org>: mailbox unavailable") is OutboxState.PENDING
    assert "anne.petit@example.org" not in (outbox.get(first).last_error or ""), "the address is stored masked"
    clock.advance(timedelta(seconds=29))
    assert outbox.due() == []
    clock.advance(timedelta(seconds=1))  # 30 s after the first failure
    assert [m.id for m in outbox.due()] == [first]
    outbox.failed(first, "timeout")
    clock.advance(timedelta(seconds=44))
    assert outbox.due() == []
    clock.advance(timedelta(seconds=1))  # doubled, but capped at 45 s
    assert [m.id for m in outbox.due()] == [first]
    assert outbox.failed(first, "timeout") is OutboxState.FAILED
    assert rooms.list_invitees(conference.id)[0].delivery_state is DeliveryState.FAILED
    clock.advance(timedelta(hours=1))
    assert [m.id for m in outbox.due()] == [later], "sent later, as asked"
    outbox.sent(later)
    assert outbox.counts() == {"pending": 0, "sent": 1, "failed": 1}


def test_a_restart_loses_nothing(settings: Settings, engine: Engine, clock: FakeClock) -> None:
    outbox = Outbox(session_factory(engine), RETRY, now=clock)
    queued = outbox.enqueue(Channel.SMS, "+33612345678", "Rejoindre : …".encode())
    leased = outbox.enqueue(Channel.SMS, "+33698765432", b"z")
    assert [m.id for m in outbox.due(limit=1)] == [queued]  # handed out, then the process dies mid-send
    other = make_engine(settings.database.url.reveal())  # the restarted process
    try:
        again = Outbox(session_factory(other), RETRY, now=clock)
        assert [m.id for m in again.due()] == [leased]
        clock.advance(LEASE)  # neither was reported sent: both are tried again, the one the crash took first
        retried = again.due()
        assert [m.id for m in retried] == [queued, leased]
        assert retried[0].payload.decode() == "Rejoindre : …"
    finally:
        other.dispose()


def test_worker_delivers_email_and_sms_and_retries_a_server_that_was_down(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    outbox = Outbox(session_factory(engine), RETRY, now=clock)
    mail = outbox.enqueue(Channel.EMAIL, "anne.petit@example.org", compose(invitation(), SENDER).as_bytes())
    with gateway(tmp_path) as (sms_port, sms_out):
        text = outbox.enqueue(Channel.SMS, "+33612345678", b"Rejoindre : https://visio.example.org/i/x")
        settings = sms_settings(sms_port)  # email.smtp unset: the email waits
        assert asyncio.run(deliver_due(outbox, settings)) == 1
        assert outbox.get(text).state is OutboxState.SENT
        assert '"to": "33612345678"' in sms_out.read_text(encoding="utf-8")
        assert outbox.get(mail).attempts == 1
    with smtp_server(tmp_path) as (smtp_port, box):
        clock.advance(timedelta(seconds=30))
        settings = load_settings(environ={"PASSERELLE_EMAIL__SMTP": f"127.0.0.1:{smtp_port}",
                                          "PASSERELLE_EMAIL__SECURITY": "none"})  # fmt: skip
        assert asyncio.run(deliver_due(outbox, settings)) == 1
        (got,) = received(box)
    assert got["Subject"] == "Invitation : Consultation de suivi"
    assert outbox.get(mail).state is OutboxState.SENT
    assert outbox.counts()["sent"] == 2


def test_the_worker_sends_what_is_queued_at_once_not_at_its_next_look(engine: Engine, tmp_path: Path) -> None:
    """With the wakeup the site gives it, a message queued from another thread goes out long before the worker's
    next round (an hour here); one queued for later does not wake it."""
    wakeup = Wakeup()
    outbox = Outbox(session_factory(engine), RETRY, wakeup=wakeup)

    async def main(settings: Settings) -> tuple[bool, bool]:
        stop = asyncio.Event()
        worker = asyncio.create_task(run(outbox, settings, stop, interval_s=3600, wakeup=wakeup))
        await asyncio.sleep(0.5)  # the first round has found nothing
        later = await asyncio.to_thread(outbox.enqueue, Channel.SMS, "+33612345678", b"plus tard",
                                        not_before=utcnow() + timedelta(hours=1))  # fmt: skip
        now = await asyncio.to_thread(outbox.enqueue, Channel.SMS, "+33612345678", b"tout de suite")
        for _ in range(100):
            if outbox.get(now).state is OutboxState.SENT:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(worker, 10)
        return outbox.get(now).state is OutboxState.SENT, outbox.get(later).state is OutboxState.PENDING

    with gateway(tmp_path) as (sms_port, sms_out):
        sent_now, later_waits = asyncio.run(main(sms_settings(sms_port)))
        assert "tout de suite" in sms_out.read_text(encoding="utf-8")
    assert sent_now, "the queued message waited for the worker's next round"
    assert later_waits
