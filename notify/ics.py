"""Calendar invitations (RFC 5545, with the iTIP methods of RFC 5546): the ``.ics`` an invitation email carries.

A conference's event keeps one ``UID`` for its life; each change sends it again with a higher ``SEQUENCE``
(METHOD:REQUEST), a deletion with METHOD:CANCEL and STATUS:CANCELLED, so calendars update or remove the entry they
already have. Times are written in UTC (``…Z``): every calendar shows them in its user's zone, and no VTIMEZONE
(whose rules would have to be carried along) is needed. Text is escaped (``\\``, ``;``, ``,``, new lines) and lines
are folded at 75 octets without splitting a UTF-8 character; lines end with CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

PRODID = "-//Passerelle//Conference bridge//FR"


class Method(StrEnum):
    REQUEST = "REQUEST"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class Event:
    uid: str  # stable for the conference: e.g. "<conference id>@<host>"
    sequence: int  # 0 first, one more at each change
    summary: str
    description: str
    starts_at: datetime  # aware
    ends_at: datetime  # aware, after starts_at
    organizer: Person
    attendee: Person
    url: str  # the attendee's join link
    location: str = ""


def escape(text: str) -> str:
    """RFC 5545 §3.3.11 TEXT; every line break (CRLF, LF or a bare CR, which no content line may hold) as ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def param(value: str) -> str:
    """A parameter value (§3.2): quoted when it holds ``:;,``; double quotes cannot appear and are dropped."""
    value = value.replace('"', "").replace("\r", " ").replace("\n", " ")
    return f'"{value}"' if any(c in value for c in ":;,") else value


def fold(line: str) -> bytes:
    """§3.1: lines longer than 75 octets go on with CRLF and one space, never inside a UTF-8 character."""
    out = bytearray()
    width = 0
    for char in line:
        encoded = char.encode()
        if width + len(encoded) > 75:
            out += b"\r\n "
            width = 1
        out += encoded
        width += len(encoded)
    return bytes(out) + b"\r\n"


def utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("calendar times must be aware")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(event: Event, method: Method = Method.REQUEST, now: datetime | None = None) -> bytes:
    if event.ends_at <= event.starts_at:
        raise ValueError("the event must end after it starts")
    if event.sequence < 0:
        raise ValueError("SEQUENCE starts at 0")
    stamp = now or datetime.now(UTC)
    cancelled = method is Method.CANCEL
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method.value}",
        "BEGIN:VEVENT",
        f"UID:{escape(event.uid)}",
        f"SEQUENCE:{event.sequence}",
        f"DTSTAMP:{utc(stamp)}",
        f"DTSTART:{utc(event.starts_at)}",
        f"DTEND:{utc(event.ends_at)}",
        f"SUMMARY:{escape(event.summary)}",
        f"DESCRIPTION:{escape(event.description)}",
        f"URL:{event.url}",
        f"LOCATION:{escape(event.location or event.url)}",
        f"ORGANIZER;CN={param(event.organizer.name)}:mailto:{event.organizer.email}",
        f"ATTENDEE;CN={param(event.attendee.name)};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:"
        f"mailto:{event.attendee.email}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return b"".join(fold(line) for line in lines)
