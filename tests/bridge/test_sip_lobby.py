"""The lobby through real SIP: a caller waiting for admission neither hears the room nor is heard by it (phones
sending distinct tones), is in once admitted, and a denied caller hears why and is hung up on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from bridge.callflow import CallOutcome
from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

RATE = 8000


def window(heard: np.ndarray, placed: float, start: float, end: float) -> np.ndarray:
    """The part of a phone's recording between two loop times (its recording starts when its call is placed)."""
    return heard[int((start - placed) * RATE) : int((end - placed) * RATE)]


@pytest.mark.e2e
def test_sip_lobby_isolates_the_caller_until_admitted_and_denial_hangs_up(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="always"))
    room = str(conference.id)
    a = Phone(tmp_path / "a", free_port(), free_port(), 32000, tone(700, RATE * 60, 8000, rate=RATE))
    b = Phone(tmp_path / "b", free_port(), free_port(), 32200, tone(1300, RATE * 60, 8000, rate=RATE))
    marks: dict[str, float] = {}

    async def scenario() -> dict[str, object]:
        loop = asyncio.get_running_loop()
        async with running(settings, rooms) as stack:
            marks["a"] = await stack.dial_in(a, conference.code)
            (leg_a,) = await stack.wait_in_lobby(room, 1)
            assert stack.engine.legs_in(room) == [], "a caller in the lobby is in the room"
            assert stack.lobby.admit(leg_a)
            assert await stack.wait_for_legs(room, 1) == 1
            marks["b"] = await stack.dial_in(b, conference.code)
            (leg_b,) = await stack.wait_in_lobby(room, 1)
            marks["b waits"] = loop.time()
            await asyncio.sleep(5.0)  # B in the lobby while A talks in the room
            marks["b admitted"] = loop.time()
            assert stack.lobby.admit(leg_b)
            assert await stack.wait_for_legs(room, 2) == 2
            await asyncio.sleep(5.0)
            marks["end"] = loop.time()
            assert await asyncio.to_thread(b.in_call)
            await asyncio.to_thread(b.command, "hangup")
            assert await stack.wait_for_legs(room, 1) == 1
            # B calls again and the host says no: B hears why, the bridge hangs up.
            await stack.dial_in(b, conference.code)
            (leg_b2,) = await stack.wait_in_lobby(room, 1)
            assert stack.lobby.deny(leg_b2)
            outcomes = await stack.wait_for_outcomes(2, limit_s=15)
            await asyncio.sleep(0.5)
            marks["b2 still up"] = float(await asyncio.to_thread(b.in_call))
            await asyncio.to_thread(a.command, "hangup")
            return outcomes

    try:
        outcomes = asyncio.run(asyncio.wait_for(scenario(), 90))
        heard_a = a.heard()
        heard_b = b.heard()  # B's second call: the dump of the first is kept apart
        first_b = sorted(b.dump.glob("*-dec.wav"))
    finally:
        a.stop()
        b.stop()
    assert sorted(map(str, outcomes.values())) == [CallOutcome.DENIED, CallOutcome.ENDED]
    assert marks["b2 still up"] == 0.0, "the denied caller was not hung up on"
    assert len(first_b) == 2, "one recording per call of B"
    assert len(heard_b) > 0, "B's second call heard nothing, not even why it was denied"
    b_first = Phone.read(first_b[0])
    lobby_a = window(heard_a, marks["a"], marks["b waits"] + 0.5, marks["b admitted"] - 0.5)
    lobby_b = window(b_first, marks["b"], marks["b waits"] + 0.5, marks["b admitted"] - 0.5)
    room_a = window(heard_a, marks["a"], marks["b admitted"] + 1.0, marks["end"] - 0.5)
    room_b = window(b_first, marks["b"], marks["b admitted"] + 1.0, marks["end"] - 0.5)
    assert min(map(len, (lobby_a, lobby_b, room_a, room_b))) >= RATE * 3
    assert magnitude_db(room_a, 1300, rate=RATE) > -30, "A does not hear B once B is admitted"
    assert magnitude_db(room_b, 700, rate=RATE) > -30, "B does not hear A once admitted"
    assert magnitude_db(lobby_a, 1300, rate=RATE) < magnitude_db(room_a, 1300, rate=RATE) - 40, "the room hears B"
    assert magnitude_db(lobby_b, 700, rate=RATE) < magnitude_db(room_b, 700, rate=RATE) - 30, "B hears the room"
