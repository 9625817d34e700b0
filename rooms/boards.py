"""Rooms' whiteboards, saved: the state the room's hub keeps (``web/board.py``), read back when the room opens again
(after its last page left, or a restart) for the conference's life. Texts on a board are health data: nothing here
logs them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from rooms.models import Conference, RoomBoard


class Boards:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self._sessions, self._clock = sessions, clock

    def load(self, conference_id: uuid.UUID) -> dict[str, Any] | None:
        with self._sessions.begin() as s:
            row = s.get(RoomBoard, conference_id)
            return None if row is None else dict(row.state)

    def save(self, conference_id: uuid.UUID, state: dict[str, Any]) -> None:
        with self._sessions.begin() as s:
            if s.get(Conference, conference_id) is None:
                return  # deleted meanwhile: its board goes with it
            row = s.get(RoomBoard, conference_id)
            if row is None:
                s.add(RoomBoard(conference_id=conference_id, state=state, updated_at=self._clock()))
            else:
                row.state, row.updated_at = state, self._clock()
