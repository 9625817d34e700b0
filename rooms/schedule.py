"""Schedule windows: wall-clock times in a conference's timezone, stored as UTC instants.

Wall times are read as the organiser means them (`zoneinfo`, PEP 495). A wall time that does not exist (the hour
skipped when clocks go forward) or that happens twice (clocks go back) is refused with a message that says so,
rather than silently moved by an hour: an explicit UTC offset settles the second case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.parsers import known_timezones
from rooms.errors import ValidationError

ISO_HINT = "an ISO 8601 date and time, e.g. 2026-12-01T09:30 (in the conference's timezone) or 2026-12-01T08:30Z"
MAX_DURATION = timedelta(days=31)


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    if name not in known_timezones():
        raise ValidationError(field, f'unknown timezone {name!r}; expected an IANA name such as "Europe/Paris"')
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(field, f"unknown timezone {name!r}") from None


def parse_instant(text: str, tz_name: str, field: str) -> datetime:
    """An ISO 8601 date-time to an aware UTC instant; without an offset it is a wall time in ``tz_name``."""
    try:
        wall = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(field, f"expected {ISO_HINT}; got {text!r}") from None
    if wall.tzinfo is not None:
        return wall.astimezone(UTC)
    return wall_instant(wall, tz_name, field)


def wall_instant(wall: datetime, tz_name: str, field: str) -> datetime:
    """A wall time (naive) in ``tz_name`` as a UTC instant; ValidationError for one the clocks skip (spring) or
    show twice (autumn), rather than a guess."""
    tz = zone(tz_name)
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        if back == wall:
            offsets = " or ".join(_offset(d) for d in (first, second))
            raise ValidationError(
                field,
                f"{wall:%Y-%m-%d %H:%M} happens twice in {tz_name} (clocks go back); add the UTC offset, {offsets}",
            )
        raise ValidationError(field, f"{wall:%Y-%m-%d %H:%M} does not exist in {tz_name} (clocks go forward)")
    return first.astimezone(UTC)


def _offset(dt: datetime) -> str:
    text = dt.isoformat(timespec="minutes")
    return text[16:]


def local_iso(instant: datetime | None, tz_name: str) -> str | None:
    """An instant shown in a timezone, ISO 8601 with its offset (``2026-12-01T09:30:00+01:00``)."""
    return None if instant is None else instant.astimezone(ZoneInfo(tz_name)).isoformat()


class WindowState(StrEnum):
    NOT_YET_OPEN = "not-yet-open"
    OPEN = "open"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Window:
    """When a conference can be joined: ``opens_at`` ≤ now < ``closes_at``; both None = always (open-ended)."""

    opens_at: datetime | None
    closes_at: datetime | None

    @classmethod
    def around(
        cls, starts_at: datetime | None, ends_at: datetime | None, open_before_min: int, grace_after_min: int
    ) -> Window:
        if starts_at is None or ends_at is None:
            return cls(None, None)
        return cls(starts_at - timedelta(minutes=open_before_min), ends_at + timedelta(minutes=grace_after_min))

    def state(self, now: datetime) -> WindowState:
        if self.opens_at is not None and now < self.opens_at:
            return WindowState.NOT_YET_OPEN
        if self.closes_at is not None and now >= self.closes_at:
            return WindowState.ENDED
        return WindowState.OPEN


def check_schedule(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise ValidationError("end", "the end must come after the start")
    if ends_at - starts_at > MAX_DURATION:
        raise ValidationError("end", f"a conference lasts at most {MAX_DURATION.days} days")
    if ends_at <= now:
        raise ValidationError("end", "the end is already past")
