from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rooms import ValidationError
from rooms.schedule import Window, WindowState, check_schedule, local_iso, parse_instant

PARIS = "Europe/Paris"


def test_schedule_wall_time_read_in_timezone() -> None:
    assert parse_instant("2026-12-01T09:30", PARIS, "start") == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert parse_instant("2026-07-01T09:30", PARIS, "start") == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert parse_instant("2026-12-01T09:30", "America/New_York", "start") == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def test_schedule_explicit_offset_wins() -> None:
    assert parse_instant("2026-12-01T09:30+00:00", PARIS, "start") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert parse_instant("2026-12-01T09:30Z", PARIS, "start") == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def test_schedule_nonexistent_wall_time_refused() -> None:
    # 2026-03-29: Paris goes from 02:00 CET straight to 03:00 CEST.
    with pytest.raises(ValidationError, match=r"^start: 2026-03-29 02:30 does not exist in Europe/Paris"):
        parse_instant("2026-03-29T02:30", PARIS, "start")


def test_schedule_ambiguous_wall_time_refused_with_offsets() -> None:
    # 2026-10-25: Paris goes back from 03:00 CEST to 02:00 CET, so 02:30 happens twice.
    with pytest.raises(ValidationError, match=r"happens twice in Europe/Paris.*\+02:00 or \+01:00"):
        parse_instant("2026-10-25T02:30", PARIS, "end")
    first = parse_instant("2026-10-25T02:30+02:00", PARIS, "end")
    second = parse_instant("2026-10-25T02:30+01:00", PARIS, "end")
    assert second - first == timedelta(hours=1)


def test_schedule_duration_across_dst_is_real_time() -> None:
    spring_start = parse_instant("2026-03-29T01:30", PARIS, "start")
    spring_end = parse_instant("2026-03-29T03:30", PARIS, "end")
    assert spring_end - spring_start == timedelta(hours=1)
    autumn_start = parse_instant("2026-10-25T01:30", PARIS, "start")
    autumn_end = parse_instant("2026-10-25T03:30", PARIS, "end")
    assert autumn_end - autumn_start == timedelta(hours=3)


def test_schedule_shown_in_conference_timezone() -> None:
    instant = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local_iso(instant, PARIS) == "2026-10-25T02:30:00+02:00"
    assert local_iso(instant + timedelta(hours=1), PARIS) == "2026-10-25T02:30:00+01:00"
    assert local_iso(None, PARIS) is None


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01T10:00", "01/12/2026 10:00", ""])
def test_schedule_garbage_refused(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^start: expected an ISO 8601 date and time"):
        parse_instant(text, PARIS, "start")


def test_schedule_unknown_timezone_refused() -> None:
    with pytest.raises(ValidationError, match=r"^timezone: unknown timezone 'Europe/Lutece'"):
        parse_instant("2026-12-01T09:30", "Europe/Lutece", "start")


def test_schedule_window_boundaries() -> None:
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    window = Window.around(start, start + timedelta(hours=1), open_before_min=10, grace_after_min=15)
    assert window.state(start - timedelta(minutes=10, microseconds=1)) is WindowState.NOT_YET_OPEN
    assert window.state(start - timedelta(minutes=10)) is WindowState.OPEN
    assert window.state(start + timedelta(minutes=74, seconds=59)) is WindowState.OPEN
    assert window.state(start + timedelta(minutes=75)) is WindowState.ENDED
    always = Window.around(None, None, 10, 15)
    assert always.state(datetime(1990, 1, 1, tzinfo=UTC)) is WindowState.OPEN


def test_schedule_checks() -> None:
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    start = now + timedelta(days=1)
    with pytest.raises(ValidationError, match=r"^end: the end must come after the start"):
        check_schedule(start, start, now)
    with pytest.raises(ValidationError, match=r"^end: the end is already past"):
        check_schedule(now - timedelta(hours=2), now - timedelta(hours=1), now)
    with pytest.raises(ValidationError, match=r"^end: a conference lasts at most 31 days"):
        check_schedule(start, start + timedelta(days=32), now)
    check_schedule(now - timedelta(hours=1), now + timedelta(hours=1), now)  # already started: fine
