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
def test_sip_caller_past_the_failure_limit_is_slowed_then_gets_in(tmp_path: Path) -> None:
    """Past its free allowance a number waits its turn ("please wait"), then gets in with the right code: its own
    typos never lock it out of the conference."""
    slow = {"PASSERELLE_LIMITS__DELAY_INITIAL_S": "8", "PASSERELLE_LIMITS__DELAY_MAX_S": "8"}
    settings, rooms = make_rooms(tmp_path, PASSERELLE_LIMITS__FAILURES_PER_CALLER="3", **slow)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    phone = Phone(tmp_path / "a", free_port(), free_port(), 31800, tone(700, 8000 * 60, 8000, rate=8000))

    async def scenario() -> tuple[float, float | None]:
        async with running(settings, rooms) as stack:
            await wrong_code_three_times(stack, phone)
            await stack.wait_for_outcomes(1, limit_s=10)
            last_failure = asyncio.get_running_loop().time()
            # The same number calls again with the right code, typed at once (kept until its turn comes).
            await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{stack.port}")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
            joined = await stack.wait_for_legs(str(conference.id), 1, limit_s=20)
            return last_failure, asyncio.get_running_loop().time() if joined else None

    try:
        last_failure, joined_at = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        phone.stop()
    assert joined_at is not None, "a number past its allowance was kept out"
    assert joined_at - last_failure >= 4.0, "the number was not slowed"
    assert rooms.code_limits.throttle.failures(rooms.code_limits.caller_keys("+33612345678", None)[0]) == 3
