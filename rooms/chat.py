"""A room's chat, stored: messages to everyone or to one participant, the history a late joiner gets, what a host
deletes or downloads for the patient's record. Texts are health data: nothing here logs them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, sessionmaker

from rooms.errors import NotFoundError, ValidationError
from rooms.models import ChatMessage, Conference

MAX_TEXT = 2000
HISTORY = 200


@dataclass(frozen=True, slots=True)
class ChatView:
    id: int
    sent_at: datetime
    sender: str
    sender_leg: str
    recipient: str | None
    recipient_leg: str | None
    text: str

    def as_message(self) -> dict[str, object]:
        """As the room's channel sends it (web/protocol.py)."""
        return {"id": self.id, "from": self.sender_leg, "name": self.sender, "to": self.recipient_leg,
                "to_name": self.recipient, "text": self.text, "at": self.sent_at.isoformat()}  # fmt: skip


def _view(row: ChatMessage) -> ChatView:
    return ChatView(row.id, row.sent_at, row.sender, row.sender_leg, row.recipient, row.recipient_leg, row.text)


class Chat:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self._sessions, self._clock = sessions, clock

    def send(self, conference_id: uuid.UUID, sender: str, sender_leg: str, text: str,
             to: tuple[str, str] | None = None) -> ChatView:  # fmt: skip
        """Store a message (``to``: the recipient's name and leg, for a private one)."""
        text = text.strip()
        if not text:
            raise ValidationError("text", "empty")
        if len(text) > MAX_TEXT:
            raise ValidationError("text", f"longer than {MAX_TEXT} characters")
        with self._sessions.begin() as s:
            if s.get(Conference, conference_id) is None:
                raise NotFoundError(f"no conference {conference_id}")
            row = ChatMessage(conference_id=conference_id, sent_at=self._clock(), sender=sender[:200],
                              sender_leg=sender_leg, recipient=to[0][:200] if to else None,
                              recipient_leg=to[1] if to else None, text=text)  # fmt: skip
            s.add(row)
            s.flush()
            return _view(row)

    def history(self, conference_id: uuid.UUID, since: datetime, *, legs: frozenset[str] = frozenset(),
                limit: int = HISTORY) -> list[ChatView]:  # fmt: skip
        """The latest ``limit`` messages since ``since``, oldest first: those to everyone, and the private ones
        to or from ``legs``."""
        mine = or_(ChatMessage.recipient_leg.is_(None), ChatMessage.recipient_leg.in_(legs),
                   ChatMessage.sender_leg.in_(legs)) if legs else ChatMessage.recipient_leg.is_(None)  # fmt: skip
        query = (
            select(ChatMessage)
            .where(ChatMessage.conference_id == conference_id, ChatMessage.sent_at >= since, mine)
            .order_by(ChatMessage.sent_at.desc(), ChatMessage.id.desc())
            .limit(limit)
        )
        with self._sessions.begin() as s:
            return [_view(row) for row in reversed(s.scalars(query).all())]

    def delete(self, conference_id: uuid.UUID, message_id: int) -> bool:
        with self._sessions.begin() as s:
            done = s.execute(delete(ChatMessage).where(ChatMessage.conference_id == conference_id,
                                                       ChatMessage.id == message_id))  # fmt: skip
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def clear(self, conference_id: uuid.UUID) -> int:
        with self._sessions.begin() as s:
            done = s.execute(delete(ChatMessage).where(ChatMessage.conference_id == conference_id))
            return int(done.rowcount or 0)  # type: ignore[attr-defined]
