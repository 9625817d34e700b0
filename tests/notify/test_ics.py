"""The invitation's .ics, read back by an independent parser (icalendar) and checked against RFC 5545's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notify.ics import Event, Method, Person, calendar, fold

PARIS = ZoneInfo("Europe/Paris")


def event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "uid": "7f1c2a9e-0b7e-4d55-9a0e-3f6c1d2b4a10@visio.example.org",
        "sequence": 0,
        "summary": "Consultation, Dr Martin; suivi",
        "description": "Rejoindre : https://visio.example.org/i/abc\n"
        "Par téléphone : 04 91 00 00 00, code 123 456 789 #",
        "starts_at": datetime(2026, 12, 3, 14, 30, tzinfo=PARIS),
        "ends_at": datetime(2026, 12, 3, 15, 0, tzinfo=PARIS),
        "organizer": Person("Dr Martin", "martin@clinique.example"),
        "attendee": Person("Mme Petit, Anne", "anne.petit@example.org"),
        "url": "https://visio.example.org/i/abc",
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_request_parses_with_every_field_and_utc_times() -> None:
    raw = calendar(event(), now=datetime(2026, 11, 29, 10, 0, tzinfo=UTC))
    parsed = icalendar.Calendar.from_ical(raw)
    assert parsed["METHOD"] == "REQUEST"
    (vevent,) = parsed.walk("VEVENT")
    assert vevent["SUMMARY"] == "Consultation, Dr Martin; suivi"  # escaped on the wire, back as typed
    description = str(vevent["DESCRIPTION"])
    assert "04 91 00 00 00, code 123 456 789 #" in description
    assert "\n" in description
    assert vevent.decoded("DTSTART") == datetime(2026, 12, 3, 13, 30, tzinfo=UTC)  # 14:30 in Paris, winter
    assert vevent.decoded("DTEND") - vevent.decoded("DTSTART") == timedelta(minutes=30)
    assert vevent["SEQUENCE"] == 0
    assert vevent["STATUS"] == "CONFIRMED"
    assert str(vevent["ATTENDEE"]) == "mailto:anne.petit@example.org"
    assert vevent["ATTENDEE"].params["CN"] == "Mme Petit, Anne"
    assert str(vevent["ORGANIZER"]) == "mailto:martin@clinique.example"
    assert vevent["URL"] == "https://visio.example.org/i/abc"


def test_lines_end_with_crlf_and_fold_at_75_octets() -> None:
    raw = calendar(event(description="é" * 200))
    assert raw.endswith(b"END:VCALENDAR\r\n")
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines), "a line is longer than 75 octets"
    for line in lines:
        line.decode()  # a fold never splits a UTF-8 character
    assert icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]["DESCRIPTION"] == "é" * 200


def test_update_and_cancellation_keep_the_uid() -> None:
    first = icalendar.Calendar.from_ical(calendar(event())).walk("VEVENT")[0]
    moved = icalendar.Calendar.from_ical(calendar(event(sequence=1, starts_at=datetime(2026, 12, 4, 9, tzinfo=PARIS),
                                                        ends_at=datetime(2026, 12, 4, 10, tzinfo=PARIS))))  # fmt: skip
    cancelled = icalendar.Calendar.from_ical(calendar(event(sequence=2), Method.CANCEL))
    assert moved.walk("VEVENT")[0]["UID"] == first["UID"] == cancelled.walk("VEVENT")[0]["UID"]
    assert moved.walk("VEVENT")[0]["SEQUENCE"] == 1
    assert cancelled["METHOD"] == "CANCEL"
    assert cancelled.walk("VEVENT")[0]["STATUS"] == "CANCELLED"


def test_bad_events_are_refused() -> None:
    with pytest.raises(ValueError, match="end after"):
        calendar(event(ends_at=datetime(2026, 12, 3, 14, 0, tzinfo=PARIS)))
    naive = datetime(2026, 12, 3, 14, 0)  # noqa: DTZ001 - the mistake this test is about
    with pytest.raises(ValueError, match="aware"):
        calendar(event(starts_at=naive, ends_at=naive + timedelta(hours=1)))
    with pytest.raises(ValueError, match="SEQUENCE"):
        calendar(event(sequence=-1))


@given(st.text(min_size=0, max_size=300))
def test_any_text_comes_back_as_typed(text: str) -> None:
    text = text.replace("\r", "")  # a bare CR is not text a form can send (it arrives as CRLF or LF)
    raw = calendar(event(summary=text, description=text, attendee=Person(text[:40] or "x", "a@example.org")))
    vevent = icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]
    assert str(vevent.get("SUMMARY", "")) == text
    assert str(vevent.get("DESCRIPTION", "")) == text


@given(st.text(alphabet=st.sampled_from("ab\r\n;,\\é"), max_size=80))
def test_no_bare_cr_or_lf_ever_reaches_the_file(text: str) -> None:
    raw = calendar(event(summary=text, description=text))
    assert b"\r" not in raw.replace(b"\r\n", b""), "a bare CR in the .ics"
    assert b"\n" not in raw.replace(b"\r\n", b""), "a bare LF in the .ics"
    vevent = icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]
    assert str(vevent.get("DESCRIPTION", "")) == text.replace("\r\n", "\n").replace("\r", "\n")


def test_fold_keeps_short_lines_whole() -> None:
    assert fold("VERSION:2.0") == b"VERSION:2.0\r\n"
    assert fold("X" * 76) == b"X" * 75 + b"\r\n X\r\n"
