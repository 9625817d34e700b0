"""Hold and resume (re-INVITEs) from a real baresip phone in a room: the call stays in its room while held, and
audio flows both ways again once it resumes. The held phone (Debian's baresip 1.0) does not reopen its recorder
after the resume, so the bridge-to-phone direction is checked on the bridge's RTP counters."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

RATE = 8000


@pytest.mark.e2e
def test_sip_hold_and_resume_keep_the_call_in_its_room(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    a = Phone(tmp_path / "a", free_port(), free_port(), 34000, tone(700, RATE * 60, 8000, rate=RATE))
    b = Phone(tmp_path / "b", free_port(), free_port(), 34200, tone(1300, RATE * 60, 8000, rate=RATE))
    during: list[int] = []

    async def scenario() -> tuple[int, int, int, int, bool]:
        async with running(settings, rooms) as stack:
            for k, phone in enumerate((a, b)):
                await stack.dial_in(phone, conference.code)
                await stack.wait_for_legs(room, k + 1)
            await asyncio.to_thread(a.command, "hold")
            for _ in range(15):
                await asyncio.sleep(0.2)
                during.append(len(stack.engine.legs_in(room)))
            await asyncio.to_thread(a.command, "resume")
            await asyncio.sleep(2.0)
            leg_a = stack.engine.legs_in(room)[0]
            sip_leg: Any = stack.gateway._calls[leg_a][0].leg
            sent0, packets0 = stack.engine.stats(leg_a).frames_out, sip_leg.session.sent_packets
            await asyncio.sleep(2.0)
            sent = stack.engine.stats(leg_a).frames_out - sent0
            unsent = sent - (sip_leg.session.sent_packets - packets0)  # frames of the room that no packet carried
            after = len(stack.engine.legs_in(room))
            ready = sip_leg.session.sending
            for phone in (a, b):
                await asyncio.to_thread(phone.command, "hangup")
            return after, sip_leg.call.renegotiations, sent, unsent, ready

    try:
        after, restarts, sent, unsent, ready = asyncio.run(asyncio.wait_for(scenario(), 60))
        heard_b = b.heard()[-RATE * 2 :]
    finally:
        a.stop()
        b.stop()
    assert set(during) == {2}, "the held call left the room"
    assert after == 2
    assert restarts >= 1, "the bridge never saw the hold renegotiation"
    assert magnitude_db(heard_b, 700, rate=RATE) > -30, "B does not hear A after the resume"
    assert ready, "the bridge's stream to A is not sending after the resume"
    assert sent >= 90, "the room's audio no longer goes to A"
    assert unsent <= 1, "the room's audio is not sent to A"
