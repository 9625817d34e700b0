"""The rooms service: every read and write of users, conferences, invitees and dial-in decisions.

Each public method is one transaction: it either writes everything or nothing (a validation error raised midway
rolls the whole transaction back). Methods are blocking; async callers run them in a thread.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from config import Language, LobbyMode, Settings
from rooms import codes, passwords
from rooms.boards import Boards
from rooms.chat import Chat
from rooms.contacts import normalise_email, normalise_phone
from rooms.dial_in import DialInDecision, DialInOutcome, Refusal
from rooms.errors import ConflictError, NotFoundError, ValidationError
from rooms.events import ChangeKind, RoomChange
from rooms.files import Clamd, Files
from rooms.models import (
    AuditEvent,
    AuditKind,
    CancelledLink,
    Conference,
    ConferenceKind,
    DeliveryState,
    DialCode,
    Invitee,
    InviteeKind,
    User,
    utcnow,
)
from rooms.schedule import Window, WindowState, check_schedule, parse_instant, zone
from rooms.throttle import CodeLimits
from rooms.views import ConferenceView, InviteeView, UserView

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
PASSWORD_MIN, PASSWORD_MAX = 12, 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RANDOM = "random"


@dataclass(frozen=True, slots=True)
class ConferenceDraft:
    """What a person or script asks for; validated by :meth:`Rooms.create_conference`.

    ``start``/``end``: ISO 8601 text (wall time in ``timezone`` unless it has an offset) or aware datetimes; both
    None = open without schedule. ``entry_code``: digits, ``"random"``, or None.
    """

    name: str
    owner: str | None = None
    entry_code: str | None = None
    start: str | datetime | None = None
    end: str | datetime | None = None
    timezone: str | None = None
    lobby_mode: LobbyMode | str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class _Fields:
    name: str
    message: str
    timezone: str
    lobby: LobbyMode
    starts_at: datetime | None
    ends_at: datetime | None
    entry_code: str | None


def _text(value: str, field: str, max_len: int, *, required: bool = True, multiline: bool = False) -> str:
    cleaned = value.strip()
    if required and not cleaned:
        raise ValidationError(field, "must not be empty")
    if len(cleaned) > max_len:
        raise ValidationError(field, f"at most {max_len} characters")
    probe = cleaned.replace("\n", "").replace("\r", "").replace("\t", "") if multiline else cleaned
    if _CONTROL.search(probe):
        raise ValidationError(field, "contains control characters")
    if not cleaned.isprintable() and any(0xD800 <= ord(c) <= 0xDFFF for c in cleaned):
        raise ValidationError(field, "contains characters that are not text")  # a lone surrogate: cannot be stored
    return cleaned


def link_digest(token: str) -> str:
    """What is kept of a deleted conference's link: enough to recognise it, not to use it or to say whose it was."""
    return hashlib.sha256(b"passerelle cancelled link\0" + token.encode()).hexdigest()


def _token() -> str:
    # 128 bits, 22 characters: beyond guessing (and the join page's limits slow any attempt), and short enough to
    # leave room in the one-SMS invitation for the organiser's name (links made earlier, of 32, keep working).
    return secrets.token_urlsafe(16)


class Rooms:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        clock: Clock = utcnow,
        draw_code: codes.CodeDraw = codes.random_code_body,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        self._draw_code = draw_code
        self._code_limits: CodeLimits | None = None
        self._listeners: list[Callable[[RoomChange], None]] = []
        self.chat = Chat(sessions, clock)  # the rooms' chat messages
        self.boards = Boards(sessions, clock)  # the rooms' whiteboards
        f = settings.files
        scanner = Clamd(f.clamd) if f.clamd is not None else None
        self.files = Files(sessions, clock, f.folder, max_bytes=f.max_mb << 20, quota_bytes=f.quota_mb << 20,
                           scanner=scanner)  # the files shared in the rooms  # fmt: skip

    def on_change(self, listener: Callable[[RoomChange], None]) -> None:
        """``listener`` is told of each deletion, ending and invitee removal once committed (from any thread)."""
        self._listeners.append(listener)

    def changed(self, change: RoomChange) -> None:
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # a listener's failure is its own, never the change's
                log.exception("conference %s: a listener failed on %s", change.conference_id, change.kind)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @property
    def code_limits(self) -> CodeLimits:
        """The failure counters of codes (phone and web share them), made once."""
        if self._code_limits is None:
            self._code_limits = CodeLimits.from_settings(self._sessions, self._settings, self._clock, self._guessing)
        return self._code_limits

    def _guessing(self, conference_id: str) -> None:
        """A conference's wrong entry codes passed its free allowance: in the audit trail, for its host."""
        limits = self._settings.limits
        self.record(AuditKind.CODE_GUESSING, conference_id=uuid.UUID(conference_id),
                    detail={"failures": limits.conference_free_failures, "window_s": limits.failures_window_s,
                            "one_try_per_s": limits.delay_max_s})  # fmt: skip

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The database's session factory, for the stores that live beside this service (outbox, web sessions)."""
        return self._sessions

    def now(self) -> datetime:
        """The service's clock (UTC): what conference windows are judged against."""
        return self._clock()

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self._tx() as s:
            s.execute(select(1))

    # -- users ---------------------------------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        display_name: str,
        *,
        email: str | None = None,
        phone: str | None = None,
        language: Language | str | None = None,
        timezone: str | None = None,
    ) -> UserView:
        name = username.strip().lower()
        if not _USERNAME.fullmatch(name):
            raise ValidationError("username", "2 to 64 characters: lower-case letters, digits, '.', '_' or '-'")
        user = User(
            username=name,
            display_name=_text(display_name, "display_name", 200),
            email=normalise_email(email) if email else None,
            phone_e164=normalise_phone(phone, self._settings.locale.phone_region) if phone else None,
            language=self._language(language),
            timezone=self._timezone(timezone),
            created_at=self._clock(),
        )
        try:
            with self._tx() as s:
                if s.scalar(select(User.id).where(User.username == name)) is not None:
                    raise ConflictError(f"username: {name!r} is already taken")
                s.add(user)
                s.flush()
                self._audit(s, AuditKind.USER_CREATED, actor_id=user.id)
        except IntegrityError:
            raise ConflictError(f"username: {name!r} is already taken") from None
        log.info("user %s created", user.id)
        return UserView.of(user)

    def set_password(self, username: str, password: str) -> None:
        """A local account's password (argon2id); what signs in without the portal."""
        if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX or not password.strip():
            raise ValidationError("password", f"{PASSWORD_MIN} characters at least")
        digest = passwords.hasher().hash(password)
        with self._tx() as s:
            self._user(s, username).password_hash = digest
        log.info("password set for a user")

    def check_password(
        self, username: str, password: str, verify: Callable[[str | None, str], bool] = passwords.verify
    ) -> UserView | None:
        """The user if the password is theirs, else None — the same work either way (an unknown name or an account
        without a password is checked against a dummy hash), so timing tells nothing. ``verify``: where the hash is
        checked (the site passes its worker processes', :class:`rooms.passwords.Verifier`)."""
        name = username.strip().lower()
        with self._tx() as s:
            digest = s.scalar(select(User.password_hash).where(User.username == name))
        if not verify(digest, password[:PASSWORD_MAX]) or digest is None:  # no database connection held meanwhile
            return None
        with self._tx() as s:
            user = s.scalar(select(User).where(User.username == name, User.password_hash == digest))
            if user is None:  # deleted, or its password changed, while the hash was checked
                return None
            if passwords.hasher().check_needs_rehash(digest):  # the parameters were raised since: stronger now
                user.password_hash = passwords.hasher().hash(password)
            return UserView.of(user)

    def get_user(self, username: str) -> UserView:
        with self._tx() as s:
            return UserView.of(self._user(s, username))

    def display_names(self, usernames: list[str]) -> dict[str, str]:
        """The display names of these accounts (those that still exist), in one query."""
        if not usernames:
            return {}
        with self._tx() as s:
            rows = s.execute(select(User.username, User.display_name).where(User.username.in_(set(usernames))))
            return {username: name for username, name in rows}

    def list_users(self) -> list[UserView]:
        with self._tx() as s:
            return [UserView.of(u) for u in s.scalars(select(User).order_by(User.username))]

    # -- conferences ---------------------------------------------------------------------------------------------

    def create_conference(
        self, draft: ConferenceDraft, invitees: list[tuple[InviteeKind | str, str]] | None = None
    ) -> ConferenceView:
        """A scheduled conference, and its ``invitees`` (not sent yet) in the same transaction: all or nothing."""
        now = self._clock()
        wanted = [(self._invitee_kind(kind), address) for kind, address in invitees or []]
        f = self._fields(draft)
        if f.starts_at is not None and f.ends_at is not None:
            check_schedule(f.starts_at, f.ends_at, now)
        window = self._window(f.starts_at, f.ends_at)
        with self._tx() as s:
            owner = self._user(s, draft.owner) if draft.owner else None
            conference = Conference(
                kind=ConferenceKind.SCHEDULED,
                name=f.name,
                owner=owner,
                entry_code=f.entry_code,
                link_token=_token(),
                starts_at=f.starts_at,
                ends_at=f.ends_at,
                timezone=f.timezone,
                lobby_mode=f.lobby,
                message=f.message,
                created_at=now,
                updated_at=now,
            )
            self._attach_code(s, conference, self._rest_until(window.closes_at), now)
            self._audit(s, AuditKind.CONFERENCE_CREATED, conference_id=conference.id, actor_id=conference.owner_id)
            for kind, address in wanted:
                self._new_invitee(s, conference, kind, address, None, send_now=False)
        log.info("conference %s created (%s, lobby %s)", conference.id, conference.kind, f.lobby)
        return self._conference_view(conference)

    def update_conference(
        self, conference_id: uuid.UUID | str, draft: ConferenceDraft, *, actor: str | None = None
    ) -> ConferenceView:
        """New name, schedule, entry code, lobby mode and message for a scheduled conference (its codes and links
        stay); the calendar sequence goes up by one. ``draft.entry_code`` None removes the entry code."""
        now = self._clock()
        f = self._fields(draft)
        with self._tx() as s:
            conference = self._conference(s, conference_id)
            if conference.kind is not ConferenceKind.SCHEDULED:
                raise ValidationError("conference", "a personal room has no schedule to change")
            schedule = (f.starts_at, f.ends_at)
            if (
                f.starts_at is not None
                and f.ends_at is not None
                and schedule != (conference.starts_at, conference.ends_at)
            ):
                check_schedule(f.starts_at, f.ends_at, now)  # an unchanged past start stays allowed
            conference.name, conference.timezone, conference.lobby_mode = f.name, f.timezone, f.lobby
            conference.message, conference.entry_code = f.message, f.entry_code
            conference.starts_at, conference.ends_at = schedule
            conference.sequence = (conference.sequence or 0) + 1
            conference.updated_at = now
            row = s.scalar(select(DialCode).where(DialCode.conference_id == conference.id))
            if row is not None:
                row.reserved_until = self._rest_until(self._window(*schedule).closes_at)
            actor_id = self._user(s, actor).id if actor else None
            self._audit(s, AuditKind.CONFERENCE_UPDATED, conference_id=conference.id, actor_id=actor_id)
            s.flush()
            return self._conference_view(conference)

    def _fields(self, draft: ConferenceDraft) -> _Fields:
        """A draft's fields checked (all but the schedule against the clock, which depends on the operation)."""
        tz = self._timezone(draft.timezone)
        name = _text(draft.name, "name", 200)
        message = _text(draft.message, "message", 2000, required=False, multiline=True)
        lobby = self._lobby(draft.lobby_mode)
        if (draft.start is None) != (draft.end is None):
            raise ValidationError("start", "give both a start and an end, or neither for an open conference")
        starts_at = ends_at = None
        if draft.start is not None and draft.end is not None:
            starts_at = self._instant(draft.start, tz, "start")
            ends_at = self._instant(draft.end, tz, "end")
        entry_code = self._entry_code(draft.entry_code, required=self._settings.codes.entry_code_required)
        return _Fields(name, message, tz, lobby, starts_at, ends_at, entry_code)

    def get_conference(self, conference_id: uuid.UUID | str) -> ConferenceView:
        with self._tx() as s:
            return self._conference_view(self._conference(s, conference_id))

    def by_link(self, token: str) -> tuple[ConferenceView, InviteeView | None]:
        """The conference a join link leads to: its own link (``/c/…``: the entry code, if any, is still asked) or
        an invitee's (``/i/…``: that person, no entry code). NotFoundError for anything else, the same for all."""
        if not (16 <= len(token) <= 64) or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
            raise NotFoundError("no such link")
        with self._tx() as s:
            conference = s.scalar(select(Conference).where(Conference.link_token == token))
            if conference is not None:
                return self._conference_view(conference), None
            invitee = s.scalar(select(Invitee).where(Invitee.join_token == token))
            if invitee is not None:
                return self._conference_view(invitee.conference), self._invitee_view(invitee)
        raise NotFoundError("no such link")

    def was_cancelled(self, token: str) -> bool:
        """Whether a link belonged to a conference since deleted (until the retention purge forgets it)."""
        if not (16 <= len(token) <= 64):
            return False
        with self._tx() as s:
            return s.get(CancelledLink, link_digest(token)) is not None

    def joinable_conference(self, conference_id: uuid.UUID | str) -> ConferenceView:
        """The conference, if it can be joined now (for dial-out): NotFoundError, or ValidationError saying when."""
        view = self.get_conference(conference_id)
        state = view.window.state(self._clock())
        if state is WindowState.NOT_YET_OPEN:
            raise ValidationError("conference", f"not open yet (opens at {view.window.opens_at:%Y-%m-%d %H:%M} UTC)")
        if state is WindowState.ENDED:
            raise ValidationError("conference", "has ended")
        return view

    def list_conferences(
        self, *, include_ended: bool = False, owner: str | None = None, involving: str | None = None
    ) -> list[ConferenceView]:
        """Conferences by start (open and personal rooms last); ended ones only when asked. ``involving``: those
        the user owns or is invited to by username."""
        now = self._clock()
        with self._tx() as s:
            query = select(Conference)
            if owner is not None:
                query = query.where(Conference.owner_id == self._user(s, owner).id)
            if involving is not None:
                user_id = self._user(s, involving).id
                invited = select(Invitee.conference_id).where(Invitee.user_id == user_id)
                query = query.where((Conference.owner_id == user_id) | Conference.id.in_(invited))
            if not include_ended:
                cutoff = now - timedelta(minutes=self._settings.schedule.grace_after_min)
                query = query.where((Conference.ends_at.is_(None)) | (Conference.ends_at > cutoff))
            query = query.order_by(Conference.starts_at.is_(None), Conference.starts_at, Conference.created_at)
            return [self._conference_view(c) for c in s.scalars(query).unique()]

    def delete_conference(self, conference_id: uuid.UUID | str, *, actor: str | None = None) -> None:
        now = self._clock()
        with self._tx() as s:
            conference = self._conference(s, conference_id)
            actor_id = self._user(s, actor).id if actor else None
            self._release_code(s, conference, now)
            tokens = [conference.link_token, *(i.join_token for i in conference.invitees)]
            s.add_all(CancelledLink(digest=link_digest(t), cancelled_at=now) for t in tokens)
            s.delete(conference)
            self._audit(s, AuditKind.CONFERENCE_DELETED, conference_id=conference.id, actor_id=actor_id)
        log.info("conference %s deleted", conference.id)
        self.changed(RoomChange(conference.id, ChangeKind.DELETED))

    def end_conference(self, conference_id: uuid.UUID | str, *, by_host: bool = True) -> None:
        """Everyone out of the room now (its host's "end for everyone"); the conference itself stays."""
        with self._tx() as s:
            conference = self._conference(s, conference_id)
            self._audit(s, AuditKind.CONFERENCE_ENDED, conference_id=conference.id, detail={"by_host": by_host})
        log.info("conference %s ended for everyone", conference.id)
        self.changed(RoomChange(conference.id, ChangeKind.ENDED))

    # -- personal rooms ------------------------------------------------------------------------------------------

    def personal_room(self, username: str) -> ConferenceView:
        """The user's permanent room, created on first use with a permanent code and link."""
        for _ in range(2):  # a concurrent first use may win the unique index: read theirs
            try:
                with self._tx() as s:
                    user = self._user(s, username)
                    room = self._personal(s, user)
                    if room is None:
                        room = self._new_personal_room(s, user)
                    return self._conference_view(room)
            except IntegrityError:
                continue
        raise ConflictError("personal room: created concurrently; try again")  # pragma: no cover

    def regenerate_personal_code(self, username: str) -> ConferenceView:
        """A new dial-in code for the personal room; the old one rests like a deleted conference's."""
        now = self._clock()
        with self._tx() as s:
            user = self._user(s, username)
            room = self._personal(s, user) or self._new_personal_room(s, user)
            self._release_code(s, room, now)
            self._attach_code(s, room, None, now)
            room.updated_at = now
            self._audit(s, AuditKind.CODE_REGENERATED, conference_id=room.id, actor_id=user.id)
            return self._conference_view(room)

    def _personal(self, s: Session, user: User) -> Conference | None:
        return s.scalar(
            select(Conference).where(Conference.owner_id == user.id, Conference.kind == ConferenceKind.PERSONAL)
        )

    def _new_personal_room(self, s: Session, user: User) -> Conference:
        now = self._clock()
        label = "Salle personnelle" if user.language is Language.FR else "Personal room"
        room = Conference(
            kind=ConferenceKind.PERSONAL,
            name=f"{label} · {user.display_name}"[:200],
            owner=user,
            entry_code=None,
            link_token=_token(),
            starts_at=None,
            ends_at=None,
            timezone=user.timezone,
            lobby_mode=self._settings.lobby.default_mode,
            message="",
            created_at=now,
            updated_at=now,
        )
        self._attach_code(s, room, None, now)
        self._audit(s, AuditKind.PERSONAL_ROOM_CREATED, conference_id=room.id, actor_id=user.id)
        return room

    # -- invitees ------------------------------------------------------------------------------------------------

    def add_invitee(
        self,
        conference_id: uuid.UUID | str,
        kind: InviteeKind | str,
        address: str,
        *,
        language: Language | str | None = None,
        send_now: bool = True,
    ) -> InviteeView:
        kind = self._invitee_kind(kind)
        with self._tx() as s:
            conference = self._conference(s, conference_id)
            invitee = self._new_invitee(s, conference, kind, address, language, send_now)
            if invitee is None:
                raise ConflictError(f"{kind}: already invited to this conference")
            return self._invitee_view(invitee)

    def add_invitees(
        self, conference_id: uuid.UUID | str, wanted: list[tuple[InviteeKind | str, str]], *, send_now: bool = True
    ) -> list[InviteeView]:
        """Several at once, all or none (one transaction); those already on the list are left as they are."""
        kinds = [(self._invitee_kind(kind), address) for kind, address in wanted]
        with self._tx() as s:
            conference = self._conference(s, conference_id)
            added = [self._new_invitee(s, conference, kind, address, None, send_now) for kind, address in kinds]
            return [self._invitee_view(i) for i in added if i is not None]

    @staticmethod
    def _invitee_kind(kind: InviteeKind | str) -> InviteeKind:
        try:
            return InviteeKind(kind)
        except ValueError:
            raise ValidationError("kind", "expected user, email or phone") from None

    def _new_invitee(self, s: Session, conference: Conference, kind: InviteeKind, address: str,
                     language: Language | str | None, send_now: bool) -> Invitee | None:  # fmt: skip
        """The invitee added in ``s``, or None when that person is already invited."""
        now = self._clock()
        invitee = Invitee(
            conference_id=conference.id,
            kind=kind,
            join_token=_token(),
            delivery_state=DeliveryState.QUEUED if send_now else DeliveryState.NOT_SENT,
            created_at=now,
            updated_at=now,
        )
        if kind is InviteeKind.USER:
            user = self._user(s, address)
            invitee.user_id, invitee.language = user.id, user.language
            same: Any = Invitee.user_id == user.id
        elif kind is InviteeKind.EMAIL:
            invitee.email = normalise_email(address)
            same = Invitee.email == invitee.email
        else:
            region = self._settings.locale.phone_region
            invitee.phone_e164 = normalise_phone(address, region, field="phone", for_sms=True)
            same = Invitee.phone_e164 == invitee.phone_e164
        if language is not None or kind is not InviteeKind.USER:
            invitee.language = self._language(language)
        if s.scalar(select(Invitee.id).where(Invitee.conference_id == conference.id, same)) is not None:
            return None
        s.add(invitee)
        s.flush()
        s.refresh(invitee)
        self._audit(s, AuditKind.INVITEE_ADDED, conference_id=conference.id, detail={"kind": str(kind)})
        return invitee

    def get_invitee(self, invitee_id: uuid.UUID) -> InviteeView:
        with self._tx() as s:
            invitee = s.get(Invitee, invitee_id)
            if invitee is None:
                raise NotFoundError(f"no invitee {invitee_id}")
            return self._invitee_view(invitee)

    def remove_invitee(self, conference_id: uuid.UUID | str, invitee_id: uuid.UUID) -> InviteeView:
        """Take someone off the list (their own link stops working); what they were, for a cancellation."""
        with self._tx() as s:
            conference = self._conference(s, conference_id)
            invitee = s.get(Invitee, invitee_id)
            if invitee is None or invitee.conference_id != conference.id:
                raise NotFoundError(f"no invitee {invitee_id} in this conference")
            view = self._invitee_view(invitee)
            s.delete(invitee)
            self._audit(s, AuditKind.INVITEE_REMOVED, conference_id=conference.id, detail={"kind": str(view.kind)})
        self.changed(RoomChange(view.conference_id, ChangeKind.INVITEE_REMOVED, view.id))
        return view

    def search_users(self, prefix: str, limit: int = 8) -> list[UserView]:
        """Accounts whose username or name starts with ``prefix`` (the wizard's autocomplete)."""
        text = prefix.strip().lower()[:64].replace("\\", "").replace("%", "")
        if len(text) < 2:  # counted once wildcards are gone: "%%" must not list every account
            return []
        pattern = text.replace("_", "\\_") + "%"
        with self._tx() as s:
            query = (select(User).where(User.username.like(pattern, escape="\\")
                                        | func.lower(User.display_name).like(pattern, escape="\\"))
                     .order_by(User.username).limit(limit))  # fmt: skip
            return [UserView.of(u) for u in s.scalars(query)]

    def invited_by_username(self, username: str) -> dict[uuid.UUID, InviteeView]:
        """The user's own invitations (by account), by conference: their links, in one query."""
        with self._tx() as s:
            user = self._user(s, username)
            rows = s.scalars(select(Invitee).where(Invitee.user_id == user.id))
            return {i.conference_id: self._invitee_view(i) for i in rows}

    def list_invitees(self, conference_id: uuid.UUID | str) -> list[InviteeView]:
        with self._tx() as s:
            return [self._invitee_view(i) for i in self._conference(s, conference_id).invitees]

    # -- dial-in ------------------------------------------------------------------------------------------------

    def resolve_dial_in(
        self,
        code: str,
        entry_code: str | None = None,
        *,
        now: datetime | None = None,
        source: str | None = None,
    ) -> DialInDecision:
        """The conference a caller's keypad input leads to, or why not.

        ``code`` as typed (spaces and a final ``#`` allowed); ``entry_code`` once the caller was asked for it;
        ``source``: an already masked label of the caller, kept in the audit trail. Refusals and admissions are
        audited with their reason; the code and the entry code typed are not.
        """
        when = now or self._clock()
        with self._tx() as s:
            decision = self._decide(s, code, entry_code, when)
            if decision.outcome is not DialInOutcome.ENTRY_CODE_NEEDED:
                self._audit_dial_in(s, decision, source)
        return decision

    def _decide(self, s: Session, code: str, entry_code: str | None, when: datetime) -> DialInDecision:
        typed = codes.normalise_code(code)
        if not (typed.isascii() and typed.isdigit()) or len(typed) != codes.CODE_DIGITS:
            return DialInDecision.refused(Refusal.MALFORMED)
        if not codes.is_well_formed(typed):
            return DialInDecision.refused(Refusal.BAD_CHECK_DIGIT)
        conference = s.scalar(
            select(Conference).join(DialCode, DialCode.conference_id == Conference.id).where(DialCode.code == typed)
        )
        if conference is None:
            return DialInDecision.refused(Refusal.UNKNOWN)
        view = self._conference_view(conference)
        state = view.window.state(when)
        if state is WindowState.NOT_YET_OPEN:
            return DialInDecision.refused(Refusal.NOT_YET_OPEN, view)
        if state is WindowState.ENDED:
            return DialInDecision.refused(Refusal.ENDED, view)
        if view.entry_code is not None:
            if entry_code is None:
                return DialInDecision(DialInOutcome.ENTRY_CODE_NEEDED, view)
            if not codes.entry_code_matches(view.entry_code, codes.normalise_code(entry_code)):
                return DialInDecision.refused(Refusal.WRONG_ENTRY_CODE, view)
        return DialInDecision(DialInOutcome.ADMITTED, view)

    def _audit_dial_in(self, s: Session, decision: DialInDecision, source: str | None) -> None:
        conference_id = decision.conference.id if decision.conference else None
        detail: dict[str, Any] = {"source": source} if source else {}
        if decision.refusal is not None:
            detail["reason"] = str(decision.refusal)
            log.info("dial-in refused (%s) conference=%s", decision.refusal, conference_id)
            kind = AuditKind.DIAL_IN_REFUSED
        else:
            log.info("dial-in admitted conference=%s", conference_id)
            kind = AuditKind.DIAL_IN_ADMITTED
        self._audit(s, kind, conference_id=conference_id, detail=detail)

    # -- audit ---------------------------------------------------------------------------------------------------

    def record(
        self,
        kind: AuditKind,
        *,
        conference_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self._tx() as s:
            self._audit(s, kind, conference_id=conference_id, detail=detail)

    def audit_events(self, *, conference_id: uuid.UUID | None = None, limit: int = 100) -> list[AuditEvent]:
        with self._tx() as s:
            query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
            if conference_id is not None:
                query = query.where(AuditEvent.conference_id == conference_id)
            return list(s.scalars(query))

    def _audit(
        self,
        s: Session,
        kind: AuditKind,
        *,
        conference_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        s.add(
            AuditEvent(at=self._clock(), kind=kind, conference_id=conference_id, actor_id=actor_id, detail=detail or {})
        )

    # -- helpers -------------------------------------------------------------------------------------------------

    def _attach_code(self, s: Session, conference: Conference, rest_until: datetime | None, now: datetime) -> None:
        """Allocate a code and link it to ``conference`` (flushed, so its id exists)."""
        code = codes.allocate(s, reserved_until=rest_until, now=now, draw=self._draw_code)
        conference.dial_code = code
        if conference.id is None:
            conference.id = uuid.uuid4()
        s.add(conference)
        s.flush()
        row = s.get(DialCode, code, populate_existing=True)
        if row is None:  # pragma: no cover - allocate() just wrote it
            raise RuntimeError("allocated dial code vanished")
        row.conference_id = conference.id
        s.flush()

    def _release_code(self, s: Session, conference: Conference, now: datetime) -> None:
        row = s.scalar(select(DialCode).where(DialCode.conference_id == conference.id))
        if row is None:
            return
        closes_at = self._window(conference.starts_at, conference.ends_at).closes_at
        row.conference_id = None
        row.reserved_until = self._rest_until(max(closes_at, now) if closes_at else now)
        s.flush()

    def _rest_until(self, closes_at: datetime | None) -> datetime | None:
        if closes_at is None:
            return None
        return closes_at + timedelta(days=self._settings.codes.reuse_after_days)

    def _window(self, starts_at: datetime | None, ends_at: datetime | None) -> Window:
        sch = self._settings.schedule
        return Window.around(starts_at, ends_at, sch.open_before_min, sch.grace_after_min)

    def _user(self, s: Session, username: str) -> User:
        user = s.scalar(select(User).where(User.username == username.strip().lower()))
        if user is None:
            raise NotFoundError(f"no user named {username.strip()!r}")
        return user

    def _conference(self, s: Session, conference_id: uuid.UUID | str) -> Conference:
        try:
            key = conference_id if isinstance(conference_id, uuid.UUID) else uuid.UUID(conference_id.strip())
        except ValueError:
            raise ValidationError("conference", "expected a conference id (a UUID)") from None
        conference = s.get(Conference, key)
        if conference is None:
            raise NotFoundError(f"no conference {key}")
        return conference

    def _language(self, value: Language | str | None) -> Language:
        if value is None or value == "":
            return self._settings.locale.default_language
        try:
            return Language(str(value).strip().lower())
        except ValueError:
            raise ValidationError("language", "expected fr or en") from None

    def _lobby(self, value: LobbyMode | str | None) -> LobbyMode:
        if value is None or value == "":
            return self._settings.lobby.default_mode
        try:
            return LobbyMode(str(value).strip().lower())
        except ValueError:
            raise ValidationError("lobby", "expected off, until-host or always") from None

    def _timezone(self, value: str | None) -> str:
        name = (value or "").strip() or self._settings.locale.timezone
        zone(name)
        return name

    def _instant(self, value: str | datetime, tz: str, field: str) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValidationError(field, "a datetime without a timezone is ambiguous")
            return value
        return parse_instant(value, tz, field)

    def _entry_code(self, value: str | None, *, required: bool) -> str | None:
        policy = self._settings.codes
        if value is None or not value.strip():
            if required:
                raise ValidationError("entry_code", "this installation requires an entry code")
            return None
        if value.strip().lower() == RANDOM:
            return codes.random_entry_code(policy.random_entry_code_digits)
        return codes.validate_entry_code(value, policy.entry_code_min_digits, policy.entry_code_max_digits)

    def join_url(self, token: str, *, invitee: bool = False) -> str:
        return f"{self._settings.http.public_base_url}/{'i' if invitee else 'c'}/{token}"

    def _conference_view(self, c: Conference) -> ConferenceView:
        return ConferenceView(
            id=c.id,
            kind=c.kind,
            name=c.name,
            owner_username=c.owner.username if c.owner else None,
            code=c.dial_code,
            entry_code=c.entry_code,
            join_url=self.join_url(c.link_token),
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            window=self._window(c.starts_at, c.ends_at),
            timezone=c.timezone,
            lobby_mode=c.lobby_mode,
            message=c.message,
            created_at=c.created_at,
            sequence=c.sequence or 0,
            owner_name=c.owner.display_name if c.owner else "",
            owner_email=c.owner.email if c.owner else None,
        )

    def _invitee_view(self, i: Invitee) -> InviteeView:
        if i.kind is InviteeKind.USER:
            address = i.user.username if i.user else ""
        else:
            address = (i.email if i.kind is InviteeKind.EMAIL else i.phone_e164) or ""
        join_url = self.join_url(i.join_token, invitee=True)
        return InviteeView(i.id, i.conference_id, i.kind, address, i.language, join_url, i.delivery_state, i.updated_at)
