"""A conference's time as people read it, in their language (Babel's formats of that locale): the weekday always,
never an ambiguous "03/12", and the time zone whenever the reader's may differ from the conference's."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time, get_timezone_location


def zone_label(zone_name: str, language: str) -> str:
    """ "France Time", "heure : France"."""
    return str(get_timezone_location(ZoneInfo(zone_name), locale=language))


def clock(at: datetime, zone_name: str, language: str) -> str:
    """ "2:20 PM"; "14:20": the time alone, for a line that already says the day and the zone."""
    return str(format_time(at.astimezone(ZoneInfo(zone_name)), "short", locale=language))


def same_day(first: datetime, second: datetime, zone_name: str) -> bool:
    zone = ZoneInfo(zone_name)
    return first.astimezone(zone).date() == second.astimezone(zone).date()


def moment(at: datetime, zone_name: str, language: str, *, with_zone: bool = True) -> str:
    """ "Thursday, December 3, 2026, 2:20 PM (France Time)"; "jeudi 3 décembre 2026, 14:20 (heure : France)"."""
    local = at.astimezone(ZoneInfo(zone_name))
    text = f"{format_date(local, 'full', locale=language)}, {format_time(local, 'short', locale=language)}"
    return f"{text} ({zone_label(zone_name, language)})" if with_zone else text


def span(starts_at: datetime, ends_at: datetime, zone_name: str, language: str, *, with_zone: bool = True) -> str:
    """ "Thursday, December 3, 2026, 2:20 – 3:00 PM (France Time)": the day said once when it ends the same day, by its
    weekday alone when it ends overnight, in full when it lasts longer."""
    zone = ZoneInfo(zone_name)
    start, end = starts_at.astimezone(zone), ends_at.astimezone(zone)
    if start.date() == end.date():
        text = (f"{format_date(start, 'full', locale=language)}, {format_time(start, 'short', locale=language)} – "
                f"{format_time(end, 'short', locale=language)}")  # fmt: skip
    elif (end.date() - start.date()).days == 1 and end - start < timedelta(days=1):
        # Overnight: the next day by its weekday alone, so the line stays short on a phone.
        weekday = format_date(end, "EEEE", locale=language)
        text = f"{moment(start, zone_name, language, with_zone=False)} – {weekday}, {clock(end, zone_name, language)}"
    else:
        first, last = (moment(at, zone_name, language, with_zone=False) for at in (start, end))
        text = f"{first} – {last}"
    return f"{text} ({zone_label(zone_name, language)})" if with_zone else text


def load_locale_data(languages: list[str], zone_name: str) -> None:
    """Babel reads a locale's data (and a zone's names) from disk the first time they are asked for: done once
    before the service takes requests, not in the middle of one beside the media clock (bench hostile)."""
    at = datetime(2026, 1, 1, 12, tzinfo=ZoneInfo("UTC"))
    from babel.dates import format_skeleton

    for language in languages:
        span(at, at + timedelta(hours=1), zone_name, language)
        span(at, at + timedelta(hours=20), zone_name, language)
        format_skeleton("MMMEd", at, locale=language)
