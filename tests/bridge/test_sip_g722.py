"""G.722 wideband calls: two real baresip phones offering G.722 first meet in a room, and one hears the other's
6 kHz, which no G.711 call carries. A phone whose offer lacks telephone-event gets G.711 (its keys come as tones,
and the tone detector listens at 8 kHz)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.rtp.session import RtpLeg
from bridge.sip import sdp
from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone


def offer(formats: str, rtpmaps: str) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 40000 RTP/AVP {formats}\r\n{rtpmaps}a=sendrecv\r\n"
    )


def test_g722_is_chosen_when_offered_first_with_telephone_event() -> None:
    events = "a=rtpmap:101 telephone-event/8000\r\n"
    _, media = sdp.choose(sdp.parse_offer(offer("9 0 101", "a=rtpmap:9 G722/8000\r\n" + events)))
    assert (media.codec.name, media.codec.rate_hz, media.payload_type) == ("G722", 16000, 9)
    text, _ = sdp.answer(sdp.parse_offer(offer("9 0 101", events)), "127.0.0.1", 20000, 1, 1)
    assert "a=rtpmap:9 G722/8000" in text, "G.722's RTP clock is 8000 in SDP (RFC 3551 §4.5.2)"
    _, media = sdp.choose(sdp.parse_offer(offer("9 0", "")))
    assert media.codec.name == "PCMU", "G.722 without telephone-event: keys would be tones the detector cannot hear"
    _, media = sdp.choose(sdp.parse_offer(offer("9 8 101", events)), rate_hz=8000)
    assert media.codec.name == "PCMA", "a re-INVITE keeps the call's rate"
    assert "9 G722/8000" in sdp.offer("127.0.0.1", 20000).split("m=audio")[1].split("\r\n", 1)[1]


@pytest.mark.e2e
def test_sip_g722_phones_hear_each_other_in_wideband(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    mics = {name: tone(hz, 16000 * 30, 6000, rate=16000) for name, hz in (("a", 6000), ("b", 1000))}
    phones = [
        Phone(tmp_path / n, free_port(), free_port(), base, mics[n], codecs=("g722", "g711"), rate_hz=16000)
        for n, base in (("a", 34000), ("b", 34200))
    ]

    async def scenario() -> tuple[list[int], list[str]]:
        async with running(settings, rooms) as stack:
            counts = []
            for k, phone in enumerate(phones):
                await stack.dial_in(phone, conference.code)  # the code as RFC 4733 events
                counts.append(await stack.wait_for_legs(room, k + 1))
            await asyncio.sleep(4.0)
            legs = [call.leg for call, _ in stack.gateway._calls.values()]
            chosen = [leg.session.codec.name for leg in legs if isinstance(leg, RtpLeg)]
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            return counts, chosen

    try:
        counts, chosen = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        for phone in phones:
            phone.stop()
    assert counts == [1, 2]
    assert chosen == ["G722", "G722"]
    a, b = (phone.heard()[-16000 * 2 :] for phone in phones)  # 2 s, both in the room
    assert len(b) == 32000, "the phone's decoder did not run at 16 kHz"
    assert magnitude_db(b, 6000, rate=16000) > -30, "B does not hear A's 6 kHz: the call is not wideband"
    assert magnitude_db(a, 1000, rate=16000) > -30, "A does not hear B"
    assert magnitude_db(a, 6000, rate=16000) < magnitude_db(a, 1000, rate=16000) - 40, "A hears itself"
