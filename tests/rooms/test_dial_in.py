from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rooms import AuditKind, ConferenceDraft, DialInOutcome, Refusal, Rooms, codes
from tests.conftest import FakeClock

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Paris


def scheduled(rooms: Rooms, entry_code: str | None = None) -> str:
    c = rooms.create_conference(
        ConferenceDraft(name="Consultation", start="2026-12-01T09:00", end="2026-12-01T09:30", entry_code=entry_code)
    )
    return c.code


def a_wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def test_dial_in_admitted_inside_window(rooms: Rooms) -> None:
    code = scheduled(rooms)
    decision = rooms.resolve_dial_in(code, now=START)
    assert decision.outcome is DialInOutcome.ADMITTED
    assert decision.conference is not None
    assert decision.conference.code == code
    assert rooms.resolve_dial_in(codes.format_code(code) + "#", now=START).admitted


@pytest.mark.parametrize("typed", ["", "12345", "1234567890", "12345678a", "١٢٣٤٥٦٧٨٩"])
def test_dial_in_malformed(rooms: Rooms, typed: str) -> None:
    decision = rooms.resolve_dial_in(typed, now=START)
    assert decision.outcome is DialInOutcome.REFUSED
    assert decision.refusal is Refusal.MALFORMED
    assert decision.conference is None


def test_dial_in_bad_check_digit(rooms: Rooms) -> None:
    code = scheduled(rooms)
    decision = rooms.resolve_dial_in(a_wrong_check_digit(code), now=START)
    assert decision.refusal is Refusal.BAD_CHECK_DIGIT
    swapped = code[1] + code[0] + code[2:]
    if swapped != code:
        assert rooms.resolve_dial_in(swapped, now=START).refusal is Refusal.BAD_CHECK_DIGIT


def test_dial_in_unknown(rooms: Rooms) -> None:
    scheduled(rooms)
    unknown = codes.make_code("00000001")
    decision = rooms.resolve_dial_in(unknown, now=START)
    assert decision.refusal is Refusal.UNKNOWN
    assert decision.conference is None


def test_dial_in_not_yet_open_then_open_then_ended(rooms: Rooms) -> None:
    code = scheduled(rooms)
    assert rooms.resolve_dial_in(code, now=START - timedelta(minutes=11)).refusal is Refusal.NOT_YET_OPEN
    assert rooms.resolve_dial_in(code, now=START - timedelta(minutes=10)).admitted
    assert rooms.resolve_dial_in(code, now=START + timedelta(minutes=44)).admitted
    ended = rooms.resolve_dial_in(code, now=START + timedelta(minutes=45))
    assert ended.refusal is Refusal.ENDED
    assert ended.conference is not None


def test_dial_in_uses_clock_when_no_time_given(rooms: Rooms, clock: FakeClock) -> None:
    code = scheduled(rooms)
    assert rooms.resolve_dial_in(code).refusal is Refusal.NOT_YET_OPEN
    clock.now = START
    assert rooms.resolve_dial_in(code).admitted


def test_dial_in_entry_code_needed_then_checked(rooms: Rooms) -> None:
    code = scheduled(rooms, entry_code="4321")
    first = rooms.resolve_dial_in(code, now=START)
    assert first.outcome is DialInOutcome.ENTRY_CODE_NEEDED
    assert first.refusal is None
    wrong = rooms.resolve_dial_in(code, "4322", now=START)
    assert wrong.refusal is Refusal.WRONG_ENTRY_CODE
    assert rooms.resolve_dial_in(code, "432", now=START).refusal is Refusal.WRONG_ENTRY_CODE
    assert rooms.resolve_dial_in(code, "", now=START).refusal is Refusal.WRONG_ENTRY_CODE
    assert rooms.resolve_dial_in(code, "4321#", now=START).admitted


def test_dial_in_closed_conference_refused_before_entry_code(rooms: Rooms) -> None:
    code = scheduled(rooms, entry_code="4321")
    assert rooms.resolve_dial_in(code, "4321", now=START + timedelta(days=1)).refusal is Refusal.ENDED


def test_dial_in_open_conference_always(rooms: Rooms) -> None:
    c = rooms.create_conference(ConferenceDraft(name="Open"))
    for when in (START - timedelta(days=300), START + timedelta(days=3000)):
        assert rooms.resolve_dial_in(c.code, now=when).admitted


def test_dial_in_deleted_conference_unknown(rooms: Rooms) -> None:
    c = rooms.create_conference(ConferenceDraft(name="Open"))
    rooms.delete_conference(c.id)
    assert rooms.resolve_dial_in(c.code).refusal is Refusal.UNKNOWN


def test_dial_in_decisions_audited_with_reason_only(rooms: Rooms) -> None:
    code = scheduled(rooms, entry_code="4321")
    rooms.resolve_dial_in(code, "9999", now=START, source="+33 6 •• •• •• 78")
    rooms.resolve_dial_in(code, "4321", now=START)
    rooms.resolve_dial_in("123", now=START)
    admitted, malformed, wrong = (rooms.audit_events()[i] for i in (1, 0, 2))
    assert wrong.kind is AuditKind.DIAL_IN_REFUSED
    assert wrong.detail == {"reason": "wrong-entry-code", "source": "+33 6 •• •• •• 78"}
    assert wrong.conference_id is not None
    assert admitted.kind is AuditKind.DIAL_IN_ADMITTED
    assert malformed.detail == {"reason": "malformed"}
    assert malformed.conference_id is None


def test_dial_in_refusal_logs_hold_no_codes(rooms: Rooms, caplog: pytest.LogCaptureFixture) -> None:
    code = scheduled(rooms, entry_code="4321")
    caplog.set_level("DEBUG")
    rooms.resolve_dial_in(code, "9999", now=START)
    rooms.resolve_dial_in(a_wrong_check_digit(code), now=START)
    assert caplog.records
    for record in caplog.records:
        message = record.getMessage()
        assert code not in message
        assert code[:-1] not in message
        assert "9999" not in message
        assert "4321" not in message
