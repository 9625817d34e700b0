"""Retention: personal data kept no longer than it serves (``[retention]``), then purged.

What goes, and when (all instants UTC, judged against the service's clock):

- outbox messages (the recipient's address or number, the invitation's bytes) ``outbox_days`` after they were
  sent, or after they were made when they were given up;
- a scheduled conference's invitees (emails, numbers, accounts, their links) ``invitees_days`` after its window
  closed — the conference itself stays, for its owner's list and the audit trail;
- audit events after ``audit_days``;
- failure counters once out of their window (``limits.failures_window_s``), and expired sign-in sessions;
- a deleted conference's links (kept as digests, so that its join page says "cancelled") ``invitees_days`` after
  the deletion;
- chat messages ``chat_days`` after they were sent (with their conference when it is deleted: the room shows a
  late joiner only the messages of the meeting it is in);
- a room's shared files ``files_days`` after they were shared (with their conference when it is deleted), their
  bytes under ``[files] folder`` with them; a room's whiteboard ``files_days`` after its last change.

``passerelle serve`` runs :meth:`Retention.purge` every ``purge_every_min``; ``passerelle purge [--dry-run]`` runs
it once and prints what went (or would go).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Delete

from config import Settings
from rooms.models import (
    AuditEvent,
    CancelledLink,
    ChatMessage,
    Conference,
    ConferenceKind,
    FailedAttempt,
    Invitee,
    OutboxMessage,
    OutboxState,
    RoomBoard,
    RoomFile,
    ThrottleGate,
    WebSession,
)

log = logging.getLogger(__name__)


class Retention:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime]) -> None:
        self._sessions, self._settings, self._clock = sessions, settings, clock

    def _sweep_files(self) -> int:
        from rooms.files import Files

        r = self._settings.files
        files = Files(self._sessions, self._clock, r.folder, max_bytes=r.max_mb << 20, quota_bytes=r.quota_mb << 20)
        return files.sweep()

    def purge(self, *, dry_run: bool = False) -> dict[str, int]:
        """Delete (or, with ``dry_run``, count) what is past its time; how many rows of each kind."""
        now = self._clock()
        r, sch = self._settings.retention, self._settings.schedule
        outbox_cutoff = now - timedelta(days=r.outbox_days)
        # A conference's window closes grace_after_min after its end: its invitees go invitees_days after that.
        ended_before = now - timedelta(days=r.invitees_days, minutes=sch.grace_after_min)
        ended = select(Conference.id).where(
            Conference.kind == ConferenceKind.SCHEDULED,
            Conference.ends_at.is_not(None),
            Conference.ends_at < ended_before,
        )
        failures_before = now - timedelta(seconds=self._settings.limits.failures_window_s)
        plan: dict[str, Delete] = {
            "outbox": delete(OutboxMessage).where(
                ((OutboxMessage.state == OutboxState.SENT) & (OutboxMessage.sent_at < outbox_cutoff))
                | ((OutboxMessage.state == OutboxState.FAILED) & (OutboxMessage.created_at < outbox_cutoff))
            ),
            "invitees": delete(Invitee).where(Invitee.conference_id.in_(ended)),
            "chat_messages": delete(ChatMessage).where(ChatMessage.sent_at < now - timedelta(days=r.chat_days)),
            "room_files": delete(RoomFile).where(RoomFile.shared_at < now - timedelta(days=r.files_days)),
            "room_boards": delete(RoomBoard).where(RoomBoard.updated_at < now - timedelta(days=r.files_days)),
            "audit_events": delete(AuditEvent).where(AuditEvent.at < now - timedelta(days=r.audit_days)),
            "failed_attempts": delete(FailedAttempt).where(FailedAttempt.at < failures_before),
            "throttle_gates": delete(ThrottleGate).where(ThrottleGate.next_try_at < failures_before),
            "web_sessions": delete(WebSession).where(WebSession.expires_at < now),
            # a deleted conference's links: "cancelled" as long as its invitees would have been kept
            "cancelled_links": delete(CancelledLink).where(
                CancelledLink.cancelled_at < now - timedelta(days=r.invitees_days)
            ),
        }
        counts: dict[str, int] = {}
        with self._sessions.begin() as s:
            for kind, statement in plan.items():
                if dry_run:
                    counted = select(func.count()).select_from(statement.table).where(statement.whereclause)  # type: ignore[arg-type]
                    counts[kind] = int(s.scalar(counted) or 0)
                else:
                    counts[kind] = int(s.execute(statement, execution_options={"synchronize_session": False})
                                       .rowcount or 0)  # type: ignore[attr-defined]  # fmt: skip
        if not dry_run:  # the bytes of the files whose rows went (purged here, or with their conference)
            counts["room_file_bytes"] = self._sweep_files()
        if any(counts.values()):
            log.info("retention %s: %s", "would purge" if dry_run else "purged",
                     ", ".join(f"{n} {kind}" for kind, n in counts.items() if n))  # fmt: skip
        return counts
