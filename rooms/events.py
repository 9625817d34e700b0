"""What the live rooms must follow at once: a conference deleted or ended, an invitee taken off its list.

:class:`rooms.Rooms` tells its listeners after the change is committed, from whatever thread made it (listeners
hand over to their own loop). Changes made by another process or node are found by the room's own look at the
store (:mod:`web.live`), a few seconds later.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class ChangeKind(StrEnum):
    DELETED = "cancelled"  # the conference is gone: its page says it was cancelled
    ENDED = "ended"  # its host ended it for everyone
    INVITEE_REMOVED = "removed"  # one invitee is no longer invited


@dataclass(frozen=True, slots=True)
class RoomChange:
    conference_id: uuid.UUID
    kind: ChangeKind
    invitee_id: uuid.UUID | None = None
