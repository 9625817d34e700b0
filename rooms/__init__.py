"""The domain and its storage: users, conferences (scheduled or personal), dial-in and entry codes, schedule
windows, invitees and the audit trail (SQLAlchemy 2.0, Alembic migrations)."""

from __future__ import annotations

from rooms.dial_in import DialInDecision, DialInOutcome, Refusal
from rooms.errors import CodeSpaceExhausted, ConflictError, NotFoundError, RoomsError, ValidationError
from rooms.models import AuditKind, ConferenceKind, DeliveryState, InviteeKind
from rooms.service import ConferenceDraft, Rooms
from rooms.views import ConferenceView, InviteeView, UserView

__all__ = [
    "AuditKind",
    "CodeSpaceExhausted",
    "ConferenceDraft",
    "ConferenceKind",
    "ConferenceView",
    "ConflictError",
    "DeliveryState",
    "DialInDecision",
    "DialInOutcome",
    "InviteeKind",
    "InviteeView",
    "NotFoundError",
    "Refusal",
    "Rooms",
    "RoomsError",
    "UserView",
    "ValidationError",
]
