"""Callers who hang up while their call is being answered (CANCEL, or BYE right after the answer): nothing is
left behind, nothing fails, and the next caller gets in."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import tone


@pytest.mark.e2e
def test_sip_callers_hanging_up_at_once_leave_nothing_behind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    phone = Phone(tmp_path / "p", free_port(), free_port(), 34400, tone(700, 8000 * 60, 8000, rate=8000))

    async def scenario() -> tuple[dict[str, object], int, int, int]:
        async with running(settings, rooms) as stack:
            target = f"sip:+33491000000@127.0.0.1:{stack.port}"
            for pause in (0.0, 0.0, 0.02, 0.05, 0.2):  # before or just after the answer
                await asyncio.to_thread(phone.command, "dial", target)
                await asyncio.sleep(pause)
                await asyncio.to_thread(phone.command, "hangup")
                await asyncio.sleep(0.3)
            # Debian's baresip sometimes keeps a call whose hang-up crossed the bridge's 200 OK (it goes on sending
            # its tone): hang up what the phone still has, as its user would.
            for _ in range(2):
                await asyncio.to_thread(phone.command, "hangup")
                await asyncio.sleep(0.2)
            ended = await stack.wait_for_outcomes(5, limit_s=10)
            where = stack.engine.occupancy()
            leftover = where["legs_in_rooms"] + where["legs_in_lobbies"] + where["legs_in_ivr"]
            await asyncio.to_thread(phone.command, "dial", target)
            await asyncio.sleep(1.5)
            await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
            joined = await stack.wait_for_legs(room, 1)
            await asyncio.to_thread(phone.command, "hangup")
            return ended, leftover, joined, len(stack.gateway._calls)

    caplog.set_level(logging.INFO)
    try:
        ended, leftover, joined, calls_now = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        phone.stop()
    assert len(ended) == 5, "a call the caller gave up on was never accounted for"
    assert leftover == 0, "a leg stayed in the engine after its caller hung up"
    assert joined == 1, "the next caller did not get in"
    assert calls_now <= 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an error was logged"
