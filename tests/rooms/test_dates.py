"""A conference's time as people read it: weekday, date, time and zone in their language."""

from __future__ import annotations

from datetime import UTC, datetime

from rooms import dates

START = datetime(2026, 12, 3, 13, 20, tzinfo=UTC)  # 14:20 in Paris


def test_a_moment_says_the_weekday_the_time_and_the_zone_in_each_language() -> None:
    assert dates.moment(START, "Europe/Paris", "fr") == "jeudi 3 décembre 2026, 14:20 (heure : France)"
    assert dates.moment(START, "Europe/Paris", "en") == "Thursday, December 3, 2026, 2:20\u202fPM (France Time)"
    assert dates.moment(START, "America/Martinique", "fr").startswith("jeudi 3 décembre 2026, 09:20")


def test_a_span_says_the_day_once_unless_it_ends_on_another() -> None:
    end = START.replace(hour=14, minute=0)
    assert dates.span(START, end, "Europe/Paris", "fr") == "jeudi 3 décembre 2026, 14:20 – 15:00 (heure : France)"
    night = START.replace(hour=22, minute=0)
    overnight = dates.span(night, night.replace(day=4, hour=1), "Europe/Paris", "fr")
    assert overnight == "jeudi 3 décembre 2026, 23:00 – vendredi, 02:00 (heure : France)"
    english = dates.span(night, night.replace(day=4, hour=1), "Europe/Paris", "en")
    assert english == "Thursday, December 3, 2026, 11:00\u202fPM – Friday, 2:00\u202fAM (France Time)"
    days = dates.span(night, night.replace(day=5, hour=1), "Europe/Paris", "fr")
    assert days == "jeudi 3 décembre 2026, 23:00 – samedi 5 décembre 2026, 02:00 (heure : France)"
    whole_day = dates.span(night, night.replace(day=4, hour=22, minute=30), "Europe/Paris", "fr")
    assert whole_day == "jeudi 3 décembre 2026, 23:00 – vendredi 4 décembre 2026, 23:30 (heure : France)"


def test_same_day_is_judged_in_the_conference_zone() -> None:
    late = START.replace(hour=23, minute=30)  # 00:30 on the 4th in Paris
    assert not dates.same_day(START, late, "Europe/Paris")
    assert dates.same_day(START, late, "UTC")
    assert dates.clock(late, "Europe/Paris", "fr") == "00:30"
