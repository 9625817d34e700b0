"""The outbox: invitations waiting to go out by email or SMS, in the database, so that nothing is lost to a restart
or a mail server that is down.

A message is sent when its time comes (``not_before`` gives "send later"); a failed attempt is tried again after
``retry.backoff_initial_s``, doubling up to ``retry.backoff_max_s``, until ``retry.max_attempts``, then it is given up
and its invitee's delivery state says so. A message being sent is leased (its next attempt moved ``LEASE`` ahead in
the same transaction that hands it out), so a crash mid-send means one more attempt later, never none; PostgreSQL
skips rows another worker holds. Error texts are stored with the recipient masked.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from config.settings import RetrySettings
from rooms.contacts import mask_email, mask_phone
from rooms.models import Channel, DeliveryState, Invitee, OutboxMessage, OutboxState, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Pending:
    id: int
    channel: Channel
    recipient: str
    payload: bytes
    attempts: int


class Wakeup:
    """Tells the worker that a message was queued, from any thread (enqueue runs in the site's worker threads),
    so that "send now" leaves now rather than at the worker's next look."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self._loop = asyncio.get_running_loop()

    def set(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.event.set)


class Outbox:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        retry: RetrySettings,
        now: Callable[[], datetime] = utcnow,
        wakeup: Wakeup | None = None,
    ) -> None:
        self._sessions, self._retry, self._now, self._wakeup = sessions, retry, now, wakeup

    def enqueue(self, channel: Channel, recipient: str, payload: bytes, *, invitee_id: uuid.UUID | None = None,
                not_before: datetime | None = None) -> int:  # fmt: skip
        now = self._now()
        with self._sessions.begin() as session:
            message = OutboxMessage(
                channel=channel, invitee_id=invitee_id, recipient=recipient, payload=payload,
                state=OutboxState.PENDING, attempts=0, next_attempt_at=max(now, not_before or now), created_at=now,
            )  # fmt: skip
            session.add(message)
            if invitee_id is not None:
                self._set_invitee(session, invitee_id, DeliveryState.QUEUED)
            session.flush()
            queued = message.id
        if self._wakeup is not None and not not_before:
            self._wakeup.set()
        return queued

    def due(self, limit: int = 20) -> list[Pending]:
        """The messages whose time has come, leased to the caller."""
        now = self._now()
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.state == OutboxState.PENDING, OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.next_attempt_at = now + LEASE
            return [Pending(r.id, r.channel, r.recipient, r.payload, r.attempts) for r in rows]

    def sent(self, message_id: int) -> None:
        with self._sessions.begin() as session:
            row = session.get_one(OutboxMessage, message_id)
            row.state, row.sent_at, row.attempts = OutboxState.SENT, self._now(), row.attempts + 1
            if row.invitee_id is not None:
                self._set_invitee(session, row.invitee_id, DeliveryState.SENT)

    def failed(self, message_id: int, error: str) -> OutboxState:
        """One failed attempt: tried again later, or given up after the last one."""
        now = self._now()
        with self._sessions.begin() as session:
            row = session.get_one(OutboxMessage, message_id)
            row.attempts += 1
            row.last_error = _masked(error, row)[:300]
            if row.attempts >= self._retry.max_attempts:
                row.state = OutboxState.FAILED
                if row.invitee_id is not None:
                    self._set_invitee(session, row.invitee_id, DeliveryState.FAILED)
            else:
                delay = min(self._retry.backoff_initial_s * 2 ** (row.attempts - 1), self._retry.backoff_max_s)
                row.next_attempt_at = now + timedelta(seconds=delay)
            return row.state

    def get(self, message_id: int) -> OutboxMessage:
        with self._sessions() as session:
            row = session.get_one(OutboxMessage, message_id)
            session.expunge(row)
            return row

    def delivered_to(self, invitee_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``invitee_ids`` who were sent something (an invitation that went out)."""
        if not invitee_ids:
            return set()
        with self._sessions() as session:
            query = select(OutboxMessage.invitee_id).where(
                OutboxMessage.invitee_id.in_(invitee_ids), OutboxMessage.state == OutboxState.SENT
            )
            return {row for row in session.scalars(query) if row is not None}

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
            return {state.value: 0 for state in OutboxState} | {state.value: count for state, count in rows}

    @staticmethod
    def _set_invitee(session: Session, invitee_id: uuid.UUID, state: DeliveryState) -> None:
        invitee = session.get(Invitee, invitee_id)
        if invitee is not None:
            invitee.delivery_state = state


def _masked(error: str, row: OutboxMessage) -> str:
    shown = mask_email(row.recipient) if row.channel is Channel.EMAIL else mask_phone(row.recipient)
    return error.replace(row.recipient, shown)


async def deliver_due(outbox: Outbox, settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Send what is due now, one message at a time, until ``stop``; returns how many went out. The messages leased
    and not sent (a stop, a cancellation mid-send) are sent again once their lease ends."""
    from notify import mail, sms

    done = 0
    for message in await asyncio.to_thread(outbox.due):
        if stop is not None and stop.is_set():
            break
        try:
            if message.channel is Channel.EMAIL:
                parsed = email.message_from_bytes(message.payload, policy=email.policy.default)
                await mail.send(parsed, settings)  # policy.default parses into an EmailMessage
            else:
                await sms.send(message.recipient, message.payload.decode(), settings)
        except (mail.SendError, sms.SendError) as exc:
            state = await asyncio.to_thread(outbox.failed, message.id, str(exc))
            log.warning("outbox message %d (%s): attempt %d failed (%s)%s", message.id, message.channel.value,
                        message.attempts + 1, type(exc.__cause__ or exc).__name__,
                        ", given up" if state is OutboxState.FAILED else "")  # fmt: skip
            continue
        await asyncio.to_thread(outbox.sent, message.id)
        done += 1
    return done


async def run(outbox: Outbox, settings: Settings, stop: asyncio.Event, interval_s: float = 5.0,
              wakeup: Wakeup | None = None) -> None:  # fmt: skip
    """The worker of ``passerelle serve``: looks at the outbox every ``interval_s``, and at once when ``wakeup``
    says something was queued, until ``stop``."""
    wakeup = wakeup or Wakeup()
    wakeup.bind()
    while not stop.is_set():
        wakeup.event.clear()
        try:
            await deliver_due(outbox, settings, stop)
        except Exception:  # the database away for a moment: the next round tries again
            log.exception("outbox round failed")
        stopping = asyncio.ensure_future(stop.wait())
        woken = asyncio.ensure_future(wakeup.event.wait())
        await asyncio.wait({stopping, woken}, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (stopping, woken):
            waiter.cancel()
