"""Read-only values handed out by :class:`rooms.service.Rooms`: detached from any database session.

Secrets (entry code, link and join tokens) are left out of ``repr``, so logging a view never leaks them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from config import Language, LobbyMode
from rooms.codes import format_code
from rooms.contacts import mask_email, mask_phone
from rooms.models import ConferenceKind, DeliveryState, InviteeKind, User
from rooms.schedule import Window


@dataclass(frozen=True, slots=True)
class UserView:
    id: uuid.UUID
    username: str
    display_name: str = field(repr=False)
    email: str | None = field(repr=False)
    phone_e164: str | None = field(repr=False)
    language: Language
    timezone: str

    @classmethod
    def of(cls, u: User) -> UserView:
        return cls(u.id, u.username, u.display_name, u.email, u.phone_e164, u.language, u.timezone)


@dataclass(frozen=True, slots=True)
class ConferenceView:
    id: uuid.UUID
    kind: ConferenceKind
    name: str = field(repr=False)
    owner_username: str | None
    code: str
    entry_code: str | None = field(repr=False)
    join_url: str = field(repr=False)
    starts_at: datetime | None
    ends_at: datetime | None
    window: Window
    timezone: str
    lobby_mode: LobbyMode
    message: str = field(repr=False)
    created_at: datetime
    sequence: int = 0
    owner_name: str = field(default="", repr=False)
    owner_email: str | None = field(default=None, repr=False)

    @property
    def code_display(self) -> str:
        return format_code(self.code)

    @property
    def has_entry_code(self) -> bool:
        return self.entry_code is not None


@dataclass(frozen=True, slots=True)
class InviteeView:
    id: uuid.UUID
    conference_id: uuid.UUID
    kind: InviteeKind
    address: str = field(repr=False)  # username, email or E.164 number
    language: Language
    join_url: str = field(repr=False)
    delivery_state: DeliveryState
    updated_at: datetime | None = None

    @property
    def masked_address(self) -> str:
        if self.kind is InviteeKind.PHONE:
            return mask_phone(self.address)
        if self.kind is InviteeKind.EMAIL:
            return mask_email(self.address)
        return self.address
