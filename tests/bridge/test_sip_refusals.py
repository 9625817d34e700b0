"""Wrong codes through real SIP: a baresip phone types bad codes with RFC 4733; after three tries the bridge says
goodbye and sends BYE; past the failure limit the next call from the same number is refused before any code."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.callflow import CallOutcome
from rooms import AuditKind, ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import Stack, free_port, make_rooms, running
from tests.mixer.signals import tone

WRONG = "123456789"  # nine digits, not a conference code (its check digit is wrong)


async def wrong_code_three_times(stack: Stack, phone: Phone) -> None:
    await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{stack.port}")
    await asyncio.sleep(1.5)
    for _ in range(3):
        await asyncio.to_thread(phone.command, "sndcode", WRONG + "#")
        await asyncio.sleep(4.0)  # "wrong code" and the start of "enter the code"


@pytest.mark.e2e
def test_sip_three_wrong_codes_end_with_goodbye_and_bye(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    real = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    phone = Phone(tmp_path / "a", free_port(), free_port(), 31600, tone(700, 8000 * 30, 8000, rate=8000))

    async def scenario() -> tuple[dict[str, object], bool, int]:
        async with running(settings, rooms) as stack:
            await wrong_code_three_times(stack, phone)
            outcomes = await stack.wait_for_outcomes(1, limit_s=10)
            await asyncio.sleep(0.5)
            return outcomes, await asyncio.to_thread(phone.in_call), len(stack.engine.legs_in(str(real.id)))

    try:
        outcomes, still_up, in_room = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        phone.stop()
    assert list(outcomes.values()) == [CallOutcome.REFUSED]
    assert not still_up, "the bridge did not hang up after three wrong codes"
    assert in_room == 0
    refused = [e for e in rooms.audit_events() if e.kind is AuditKind.DIAL_IN_REFUSED]
    assert len(refused) == 3
    assert all("6123" not in str(e.detail) for e in refused), "the caller's number is in the audit trail"


@pytest.mark.e2e
def test_sip_caller_past_the_failure_limit_is_refused_at_once(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    phone = Phone(tmp_path / "a", free_port(), free_port(), 31800, tone(700, 8000 * 40, 8000, rate=8000))

    async def scenario() -> tuple[dict[str, object], float, int]:
        async with running(settings, rooms, failure_limit=3) as stack:
            await wrong_code_three_times(stack, phone)
            await stack.wait_for_outcomes(1, limit_s=10)
            await asyncio.sleep(1.0)
            # The same number calls again, this time with the right code: too late, goodbye before any code.
            started = asyncio.get_running_loop().time()
            await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{stack.port}")
            await asyncio.sleep(0.5)
            await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
            outcomes = await stack.wait_for_outcomes(2, limit_s=15)
            ended_after = asyncio.get_running_loop().time() - started
            return outcomes, ended_after, len(stack.engine.legs_in(str(conference.id)))

    try:
        outcomes, ended_after, in_room = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        phone.stop()
    assert list(outcomes.values()) == [CallOutcome.REFUSED, CallOutcome.BLOCKED]
    assert in_room == 0, "a blocked caller reached the room"
    assert ended_after < 6.0, "the blocked call was not ended after the goodbye"
    reasons = [e.detail.get("reason") for e in rooms.audit_events() if e.kind is AuditKind.DIAL_IN_REFUSED]
    assert "rate-limited" in reasons
