"""Interop with linphone (liblinphone and belle-sip: a third SIP stack, independent of the bridge's and baresip's):
it dials in (on Opus, which it offers first, with telephone-event on Opus's 48 kHz clock) and types the codes
with RFC 4733 or SIP INFO, and it is dialled out to through the trunk; each time a
baresip phone in the same room hears it, and it receives the room's audio."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from rooms import ConferenceDraft
from tests.bridge.linphone import Linphone
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

RATE = 8000


def assert_both_ways(heard: np.ndarray, marks: dict[str, float], linphone_hz: float, received: list[float]) -> None:
    """The baresip phone heard linphone's tone while both were in the room (from a second after both were in to
    linphone's hang-up, on the phone's recording started at marks["phone"]), and linphone received the room."""
    window = heard[int((marks["both"] + 1 - marks["phone"]) * RATE) : int((marks["end"] - marks["phone"]) * RATE)]
    assert len(window) >= RATE * 3
    assert magnitude_db(window, linphone_hz, rate=RATE) > -30, "the phone in the room does not hear linphone"
    assert received, "linphone reported no bandwidth"
    assert max(received) > 40, f"linphone received no audio from the bridge: {received} kbit/s"


@pytest.mark.e2e
@pytest.mark.parametrize("digits", ["rfc4733", "sip-info"])
def test_linphone_dials_in_types_the_codes_and_is_heard(tmp_path: Path, digits: str) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off", entry_code="482193"))
    room = str(conference.id)
    phone = Phone(tmp_path / "phone", free_port(), free_port(), 34000, tone(700, RATE * 60, 8000, rate=RATE))
    linphone = Linphone(tmp_path / "linphone", free_port(), 34200, tone(1100, RATE * 60, 8000, rate=RATE),
                        sip_info_digits=digits == "sip-info")  # fmt: skip
    marks: dict[str, float] = {}

    async def scenario() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        async with running(settings, rooms) as stack:
            marks["phone"] = await stack.dial_in(phone, conference.code)
            await asyncio.sleep(2.5)
            await asyncio.to_thread(phone.command, "sndcode", "482193#")  # the entry code
            assert await stack.wait_for_legs(room, 1) == 1
            await asyncio.to_thread(linphone.call, f"sip:+33491000000@127.0.0.1:{stack.port}")
            assert await asyncio.to_thread(linphone.wait_state, "LinphoneCallStreamsRunning", 10)
            assert await asyncio.to_thread(linphone.play)  # its voice, from now on
            await asyncio.sleep(1.0)
            for key in conference.code + "#" + "482193#":
                assert "Status: Ok" in await asyncio.to_thread(linphone.command, f"dtmf {key}")
                await asyncio.sleep(0.2)
            both = await stack.wait_for_legs(room, 2, limit_s=15)
            marks["both"] = loop.time()
            await asyncio.sleep(5.0)
            marks["end"] = loop.time()
            await asyncio.to_thread(linphone.command, "terminate")
            after = await stack.wait_for_legs(room, 1, limit_s=5)
            await asyncio.to_thread(phone.command, "hangup")
            return both, after, len(stack.outcomes)

    try:
        both, after, _ = asyncio.run(asyncio.wait_for(scenario(), 120))
        heard = phone.heard()
        received = linphone.received_kbit_s()
    finally:
        linphone.stop()
        phone.stop()
    assert (both, after) == (2, 1), "linphone did not get into the room with its codes, or did not leave it"
    assert_both_ways(heard, marks, 1100, received)


@pytest.mark.e2e
def test_the_bridge_dials_linphone_out_and_it_joins_the_room(tmp_path: Path) -> None:
    callee_port = free_port()
    settings, rooms = make_rooms(
        tmp_path, PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{callee_port}", PASSERELLE_TRUNK__ANSWER_TIMEOUT_S="10"
    )
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    phone = Phone(tmp_path / "phone", free_port(), free_port(), 34400, tone(700, RATE * 60, 8000, rate=RATE))
    linphone = Linphone(tmp_path / "linphone", callee_port, 34600, tone(1300, RATE * 60, 8000, rate=RATE),
                        auto_answer=True)  # fmt: skip
    marks: dict[str, float] = {}

    async def scenario() -> tuple[str, int, int]:
        loop = asyncio.get_running_loop()
        async with running(settings, rooms) as stack:
            marks["phone"] = await stack.dial_in(phone, conference.code)
            assert await stack.wait_for_legs(room, 1) == 1
            dialling = asyncio.ensure_future(stack.gateway.dial_out(conference.id, "06 12 34 56 78"))
            assert await asyncio.to_thread(linphone.wait_state, "LinphoneCallStreamsRunning", 10)
            assert await asyncio.to_thread(linphone.play)
            leg = await dialling
            both = await stack.wait_for_legs(room, 2, limit_s=10)  # after "you are joining the conference"
            marks["both"] = loop.time()
            await asyncio.sleep(5.0)
            marks["end"] = loop.time()
            await asyncio.to_thread(linphone.command, "terminate")  # the callee hangs up
            after = await stack.wait_for_legs(room, 1, limit_s=5)
            await asyncio.to_thread(phone.command, "hangup")
            return leg, both, after

    try:
        leg, both, after = asyncio.run(asyncio.wait_for(scenario(), 120))
        heard = phone.heard()
        received = linphone.received_kbit_s()
    finally:
        linphone.stop()
        phone.stop()
    assert leg.startswith("out-")
    assert (both, after) == (2, 1)
    assert_both_ways(heard, marks, 1300, received)
