"""SQLAlchemy 2.0 models. Every instant is stored in UTC; a conference keeps the timezone it is shown in.

Tables: ``users`` (professionals), ``conferences`` (scheduled or personal), ``dial_codes`` (which code belongs to
which conference, and how long a released code stays out of circulation), ``invitees``, ``audit_events``,
``outbox``, ``web_sessions``, and the failure counters ``failed_attempts`` and ``throttle_gates``.
The schema is created and changed only by the Alembic migrations in ``rooms/migrations``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from config import Language, LobbyMode


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ConferenceKind(StrEnum):
    SCHEDULED = "scheduled"
    PERSONAL = "personal"


class InviteeKind(StrEnum):
    USER = "user"
    EMAIL = "email"
    PHONE = "phone"


class DeliveryState(StrEnum):
    """Where an invitation stands: not to be sent yet, waiting in the outbox, sent, or given up."""

    NOT_SENT = "not-sent"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # Stored as the values ("until-host"), as plain strings with a CHECK: portable and readable in SQL.
    length = max(len(m.value) for m in cls)
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=length, values_callable=_values)


def _values(cls: type[StrEnum]) -> list[str]:
    return [m.value for m in cls]


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime}  # noqa: RUF012 - SQLAlchemy's own class attribute


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone_e164: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[Language] = mapped_column(_enum(Language, "language"))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # argon2id, for local sign-in; None for accounts that sign in through the portal (OpenID Connect) only.
    password_hash: Mapped[str | None] = mapped_column(String(200))


class Conference(Base):
    __tablename__ = "conferences"
    __table_args__ = (
        CheckConstraint(
            "(starts_at IS NULL AND ends_at IS NULL) OR (starts_at IS NOT NULL AND ends_at IS NOT NULL "
            "AND starts_at < ends_at)",
            name="window",
        ),
        CheckConstraint("kind != 'personal' OR owner_id IS NOT NULL", name="personal_has_owner"),
        # One personal room per user.
        Index(
            "uq_conferences_personal_owner",
            "owner_id",
            unique=True,
            sqlite_where=text("kind = 'personal'"),
            postgresql_where=text("kind = 'personal'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[ConferenceKind] = mapped_column(_enum(ConferenceKind, "conference_kind"))
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    # The code callers type; the live mapping is dial_codes, this column keeps it for the record.
    dial_code: Mapped[str] = mapped_column(String(9))
    # Kept retrievable (invitations print it); compared in constant time; never logged.
    entry_code: Mapped[str | None] = mapped_column(String(8))
    link_token: Mapped[str] = mapped_column(String(32), unique=True)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    timezone: Mapped[str] = mapped_column(String(64))
    lobby_mode: Mapped[LobbyMode] = mapped_column(_enum(LobbyMode, "lobby_mode"))
    message: Mapped[str] = mapped_column(Text, default="")
    sequence: Mapped[int] = mapped_column(default=0)  # the calendar event's SEQUENCE: one more at each change
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    owner: Mapped[User | None] = relationship(lazy="joined")
    invitees: Mapped[list[Invitee]] = relationship(
        back_populates="conference", cascade="all, delete-orphan", order_by="Invitee.created_at"
    )


class DialCode(Base):
    """A dial-in code in use or resting: held by ``conference_id``; free again after ``reserved_until``.

    ``reserved_until`` is NULL while the conference has no end (open and personal rooms); for a scheduled one it is
    its close plus the reuse delay; when a conference is deleted or its code regenerated, the row loses its
    conference and rests until ``now`` plus the reuse delay. The primary key makes allocation race-free.
    """

    __tablename__ = "dial_codes"

    code: Mapped[str] = mapped_column(String(9), primary_key=True)
    conference_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conferences.id", ondelete="SET NULL"), unique=True
    )
    reserved_until: Mapped[datetime | None]


class Invitee(Base):
    __tablename__ = "invitees"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'user' AND user_id IS NOT NULL) OR (kind = 'email' AND email IS NOT NULL) "
            "OR (kind = 'phone' AND phone_e164 IS NOT NULL)",
            name="address",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    conference_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conferences.id", ondelete="CASCADE"), index=True)
    kind: Mapped[InviteeKind] = mapped_column(_enum(InviteeKind, "invitee_kind"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(254))
    phone_e164: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[Language] = mapped_column(_enum(Language, "language"))
    join_token: Mapped[str] = mapped_column(String(32), unique=True)
    delivery_state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState, "delivery_state"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    conference: Mapped[Conference] = relationship(back_populates="invitees")
    user: Mapped[User | None] = relationship(lazy="joined")


class AuditKind(StrEnum):
    USER_CREATED = "user.created"
    CONFERENCE_CREATED = "conference.created"
    CONFERENCE_DELETED = "conference.deleted"
    PERSONAL_ROOM_CREATED = "personal-room.created"
    CODE_REGENERATED = "code.regenerated"
    INVITEE_ADDED = "invitee.added"
    DIAL_IN_ADMITTED = "dial-in.admitted"
    DIAL_IN_REFUSED = "dial-in.refused"
    DIAL_OUT = "dial-out"
    CONFERENCE_UPDATED = "conference.updated"
    INVITEE_REMOVED = "invitee.removed"
    SIGNED_IN = "user.signed-in"
    # Wrong codes for one conference past its free allowance: someone may be guessing; its host is told.
    CODE_GUESSING = "code.guessing"
    CONFERENCE_ENDED = "conference.ended"  # by its host, for everyone in it
    # A file of a room: its id, size and type only (its name may identify a patient: never in the trail).
    FILE_UPLOADED = "file.uploaded"
    FILE_REFUSED = "file.refused"  # too large, over the quota, a type not allowed, a virus: the reason code
    FILE_DOWNLOADED = "file.downloaded"
    FILE_DELETED = "file.deleted"


class AuditEvent(Base):
    """What happened, to which conference, by whom: ids and reason codes only, nothing personal in clear."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[AuditKind] = mapped_column(_enum(AuditKind, "audit_kind"))
    conference_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class OutboxState(StrEnum):
    PENDING = "pending"  # to send at next_attempt_at
    SENT = "sent"
    FAILED = "failed"  # given up after retry.max_attempts


class OutboxMessage(Base):
    """A message to deliver (an invitation by email or SMS), kept until it is sent or given up: what the outbox
    worker sends survives restarts, and a failure is tried again with backoff (``[retry]``)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "channel"))
    invitee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invitees.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(String(254))  # the address or E.164 number: needed to send, never logged
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the whole email (RFC 5322 bytes) or the SMS text (UTF-8)
    state: Mapped[OutboxState] = mapped_column(_enum(OutboxState, "outbox_state"))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


def utcnow() -> datetime:
    return datetime.now(UTC)


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a read of this table
    cannot be replayed as a session. Deleted on logout; past ``expires_at`` it is worthless."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # "password" or "oidc"
    id_token: Mapped[str | None] = mapped_column(Text)  # the portal's, kept to end its session too at logout
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class FailedAttempt(Base):
    """One failed try (a wrong code, a wrong password) against one key: a caller's number, a source address, a
    conference, an account. Keys are stored as keyed hashes (HMAC-SHA-256), never as the number or address."""

    __tablename__ = "failed_attempts"
    __table_args__ = (Index("ix_failed_attempts_scope_key_at", "scope", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)


class ThrottleGate(Base):
    """When the next try against a slowed key may start: claimed by one try at a time, on every node."""

    __tablename__ = "throttle_gates"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_try_at: Mapped[datetime] = mapped_column(index=True)


class CancelledLink(Base):
    """A deleted conference's links, as digests only (nothing that names it or its people): the join page can say
    "cancelled" rather than "not found" to whoever follows an old invitation, until the retention purge."""

    __tablename__ = "cancelled_links"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the link's token, hex
    cancelled_at: Mapped[datetime] = mapped_column(index=True)


class ChatMessage(Base):
    """A message of a room's chat. Health data: never logged, never in the audit trail; purged by the retention
    (``chat_days`` after it was sent) and with its conference."""

    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_conference_id_sent_at", "conference_id", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    conference_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conferences.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime] = mapped_column(index=True)
    sender: Mapped[str] = mapped_column(String(200))  # the name the room showed
    sender_leg: Mapped[str] = mapped_column(String(40))
    # A private message: to whom (its name and leg); None: to everyone.
    recipient: Mapped[str | None] = mapped_column(String(200))
    recipient_leg: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)


class RoomFile(Base):
    """A file shared in a room: its bytes under ``[files] folder`` by a random name (never the upload's), its name
    and uploader as the room showed them (health data: never logged, never in the audit trail); purged by the
    retention (``files_days`` after it was shared) and with its conference."""

    __tablename__ = "room_files"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    conference_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conferences.id", ondelete="CASCADE"), index=True)
    shared_at: Mapped[datetime] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(255))  # as uploaded, cleaned: shown in the room, given on download
    uploader: Mapped[str] = mapped_column(String(200))  # the name the room showed
    uploader_key: Mapped[str] = mapped_column(String(64))  # a digest of the uploader's ticket: who may delete it
    media_type: Mapped[str] = mapped_column(String(120))  # decided from the content
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    stored_as: Mapped[str] = mapped_column(String(64), unique=True)  # its file's name under [files] folder


class RoomBoard(Base):
    """A room's whiteboard, saved as the room's hub keeps it (``web/board.py``): its pages of objects, for the
    conference's life; texts on it are health data (never logged). Purged ``files_days`` after its last change, and
    with its conference."""

    __tablename__ = "room_boards"

    conference_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conferences.id", ondelete="CASCADE"),
                                                     primary_key=True)  # fmt: skip
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(index=True)


class Node(Base):
    """A ``passerelle serve`` of a cluster sharing this database (rooms/cluster.py): where its SIP side and its site
    are reached, and when it last said it was alive. Nothing personal."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    sip_address: Mapped[str] = mapped_column(String(300))  # host:port that its peers and the SIP front reach
    public_url: Mapped[str] = mapped_column(String(300))  # its site, where browsers of its rooms are sent
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)
    draining: Mapped[bool] = mapped_column(default=False)


class RoomHome(Base):
    """The node a conference's room is mixed on now; ``epoch`` grows at every claim, so that a node that lost the
    room (thought dead, then back) can tell its claim is stale."""

    __tablename__ = "room_homes"

    conference_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conferences.id", ondelete="CASCADE"),
                                                     primary_key=True)  # fmt: skip
    node: Mapped[str] = mapped_column(String(64), index=True)
    epoch: Mapped[int]
    claimed_at: Mapped[datetime]
