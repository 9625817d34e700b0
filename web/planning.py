"""The planning form's fields read and checked with localised messages, field by field, keeping every value typed.

Used by the wizard (``/plan``, ``/conferences/<id>/edit``) and by the JSON API, so both refuse the same things the
same way. :meth:`Plan.read` never raises on bad input: it returns the values as typed and the errors by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from config import LobbyMode, Settings
from config.parsers import known_timezones
from rooms import ConferenceDraft, ConferenceView, NotFoundError, Rooms, ValidationError
from rooms.codes import validate_entry_code
from rooms.contacts import normalise_email, normalise_phone
from rooms.schedule import wall_instant
from web.i18n import N_

MAX_NAME, MAX_MESSAGE, MAX_INVITEES = 200, 2000, 200
DURATIONS = (15, 30, 45, 60, 90, 120, 180, 240, 480)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Plan:
    """What the form holds (as typed) and, once read, what it means."""

    users: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    name: str = ""
    entry: str = "none"  # none | random | chosen
    entry_code: str = ""
    lobby: str = ""
    schedule: str = "scheduled"  # scheduled | open
    day: str = ""
    at: str = ""
    duration: str = "60"
    timezone: str = ""
    message: str = ""
    send: str = "now"  # now | at | later
    send_day: str = ""
    send_at: str = ""
    errors: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    # meaning, once valid
    start: datetime | None = None
    end: datetime | None = None
    send_time: datetime | None = None
    normal_emails: list[str] = field(default_factory=list)
    normal_phones: list[str] = field(default_factory=list)

    @classmethod
    def from_form(cls, form: Any) -> Plan:
        def one(key: str, default: str = "") -> str:
            return str(form.get(key, default))[:4000]

        def many(key: str) -> list[str]:
            values: dict[str, None] = {}  # typed twice counts once, order kept
            for raw in form.getall(key, []) if hasattr(form, "getall") else form.get(key, []):
                for v in re.split(r"[,;\n]", str(raw)[:20000]):
                    if v.strip():
                        values[v.strip()] = None
                    if len(values) > MAX_INVITEES:  # one more than allowed is enough to say so: no more work
                        return list(values)
            return list(values)

        return cls(users=many("user"), emails=many("email"), phones=many("phone"), name=one("name"),
                   entry=one("entry", "none"), entry_code=one("entry_code"), lobby=one("lobby"),
                   schedule=one("schedule", "scheduled"), day=one("day"), at=one("at"),
                   duration=one("duration", "60"), timezone=one("timezone"), message=one("message"),
                   send=one("send", "now"), send_day=one("send_day"), send_at=one("send_at"))  # fmt: skip

    def check(self, settings: Settings, rooms: Rooms, now: datetime, *, editing: bool = False) -> None:
        """Fill ``errors`` (field → untranslated message) and the meaning of each valid field."""
        e = self.errors
        e.clear()
        self.name = " ".join(self.name.split())
        if not self.name:
            e["name"] = (N_("Give the conference a name."), {})
        elif len(self.name) > MAX_NAME or _CONTROL.search(self.name):
            e["name"] = (N_("The name has at most 200 characters."), {})
        self.normal_emails, self.normal_phones = [], []
        if len(self.users) + len(self.emails) + len(self.phones) > MAX_INVITEES:  # before any work on them
            e["users"] = (N_("At most 200 participants."), {})
            self.users, self.emails, self.phones = [], [], []
        for username in self.users:
            try:
                rooms.get_user(username)
            except (NotFoundError, ValidationError):
                e["users"] = (N_("No account is named “%(value)s”."), {"value": username[:64]})
                break
        seen: set[str] = set()
        for address in self.emails:
            try:
                normal = normalise_email(address)
                if normal.casefold() not in seen:  # one person, one invitation
                    seen.add(normal.casefold())
                    self.normal_emails.append(normal)
            except ValidationError:
                e["emails"] = (N_("“%(value)s” is not an email address."), {"value": address[:254]})
                break
        region = settings.locale.phone_region
        numbers: set[str] = set()
        for number in self.phones:
            try:
                normal = normalise_phone(number, region, field="phone", for_sms=True)
                if normal not in numbers:  # "06 11 22 33 44" and "+33611223344" are one phone
                    numbers.add(normal)
                    self.normal_phones.append(normal)
            except ValidationError:
                e["phones"] = (
                    N_("“%(value)s” is not a mobile number that can receive an SMS."),
                    {"value": number[:40]},
                )
                break
        policy = settings.codes
        if self.entry not in ("none", "random", "chosen"):
            e["entry"] = (N_("Choose no entry code, a random one, or your own."), {})
        elif self.entry == "none" and policy.entry_code_required:
            e["entry"] = (N_("This installation requires an entry code."), {})
        elif self.entry == "chosen":
            try:
                self.entry_code = validate_entry_code(self.entry_code, policy.entry_code_min_digits,
                                                      policy.entry_code_max_digits)  # fmt: skip
            except ValidationError:
                e["entry_code"] = (
                    N_("The entry code has %(min)s to %(max)s digits."),
                    {"min": str(policy.entry_code_min_digits), "max": str(policy.entry_code_max_digits)},
                )
        if self.lobby and self.lobby not in {mode.value for mode in LobbyMode}:
            e["lobby"] = (N_("Choose a lobby mode from the list."), {})
        self.timezone = self.timezone.strip() or settings.locale.timezone
        if self.timezone not in known_timezones():
            e["timezone"] = (N_("Choose a time zone from the list."), {})
            return
        zone = ZoneInfo(self.timezone)
        self.start = self.end = None
        if self.schedule not in ("scheduled", "open"):
            e["schedule"] = (N_("Choose a date and time, or open without schedule."), {})
        elif self.schedule == "scheduled":
            start, skipped = _when(self.day, self.at, zone, self.timezone)
            if skipped is not None:
                e["day"] = skipped
            elif start is None:
                e["day"] = (N_("Give the date (day/month/year) and the time (hours:minutes)."), {})
            elif start < now - timedelta(minutes=1) and not editing:
                e["day"] = (N_("This date and time have passed."), {})
            elif start > now + timedelta(days=2 * 366):
                e["day"] = (N_("Plan at most two years ahead."), {})
            if not self.duration.isdigit() or int(self.duration) not in DURATIONS:
                e["duration"] = (N_("Choose a duration from the list."), {})
            elif start is not None and "day" not in e:  # the length in absolute time: right across a clock change
                self.start, self.end = start, start + timedelta(minutes=int(self.duration))
        self.message = self.message.replace("\r\n", "\n").replace("\r", "\n").strip()
        if len(self.message) > MAX_MESSAGE or _CONTROL.search(self.message):
            e["message"] = (N_("The message has at most 2000 characters."), {})
        self.send_time = None
        if self.send not in ("now", "at", "later"):
            e["send"] = (N_("Choose when the invitations go out."), {})
        elif self.send == "at":
            moment, skipped = _when(self.send_day, self.send_at, zone, self.timezone)
            if skipped is not None:
                e["send_day"] = skipped
            elif moment is None:
                e["send_day"] = (N_("Give the date and time the invitations go out."), {})
            elif moment <= now:
                e["send_day"] = (N_("This date and time have passed."), {})
            elif self.start is not None and moment >= self.start:
                e["send_day"] = (N_("The invitations must go out before the conference starts."), {})
            else:
                self.send_time = moment

    def draft(self, owner: str) -> ConferenceDraft:
        entry = {"none": None, "random": "random"}.get(self.entry, self.entry_code)
        return ConferenceDraft(name=self.name, owner=owner, entry_code=entry, start=self.start, end=self.end,
                               timezone=self.timezone, lobby_mode=self.lobby or None, message=self.message)  # fmt: skip


def local_schedule(conference: ConferenceView) -> tuple[str, str, int] | None:
    """A scheduled conference's start as a form shows it (``YYYY-MM-DD``, ``HH:MM``, in its own zone) and its length
    in minutes; None for an open one. What a change starts from, in the wizard and in the API."""
    if conference.starts_at is None or conference.ends_at is None:
        return None
    start = conference.starts_at.astimezone(ZoneInfo(conference.timezone))
    minutes = int((conference.ends_at - conference.starts_at).total_seconds() // 60)
    return f"{start:%Y-%m-%d}", f"{start:%H:%M}", minutes


def _when(day: str, at: str, zone: ZoneInfo, tz_name: str) -> tuple[datetime | None, tuple[str, dict[str, str]] | None]:
    """A date and time of the form as a UTC instant (None when unreadable), or why not: the clocks skip or repeat
    that wall time."""
    moment = _moment(day, at, zone)
    if moment is None:
        return None, None
    try:
        return wall_instant(moment.replace(tzinfo=None), tz_name, "day"), None
    except ValidationError as exc:
        values = {"time": f"{moment:%H:%M}", "zone": tz_name}
        if "twice" in str(exc):
            return None, (N_("%(time)s happens twice that day in %(zone)s (the clocks go back): choose another "
                             "time."), values)  # fmt: skip
        return None, (N_("%(time)s does not exist that day in %(zone)s (the clocks go forward): choose another "
                         "time."), values)  # fmt: skip


def _moment(day: str, at: str, zone: ZoneInfo) -> datetime | None:
    """A wall-clock date and time in ``zone`` (``YYYY-MM-DD`` or ``DD/MM/YYYY``, ``HH:MM``), or None."""
    day, at = day.strip(), at.strip()
    try:
        if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", day):
            d, m, y = (int(x) for x in day.split("/"))
            parsed_day = date(y, m, d)
        else:
            parsed_day = date.fromisoformat(day)
        parsed_time = time.fromisoformat(at)
    except ValueError:
        return None
    if not re.fullmatch(r"\d{1,2}:\d{2}", at):
        return None
    return datetime.combine(parsed_day, parsed_time, zone)
