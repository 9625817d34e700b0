"""The browser legs' Opus: mono, decodable, one encode for the listeners who hear the same frame."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bench.webclients import decode
from bridge import BufferLeg, Engine
from bridge.opus import FRAME, RATE, OpusEncoder, SharedOpus
from bridge.webrtc import WebRtcLeg
from tests.mixer.signals import magnitude_db, tone


def test_encoder_gives_one_mono_packet_per_frame_that_decodes_to_the_tone() -> None:
    encoder = OpusEncoder()
    signal = tone(1000, FRAME * 50, 8000, rate=RATE)
    packets = [encoder.encode(signal[i * FRAME : (i + 1) * FRAME]) for i in range(50)]
    assert all(packets)
    assert encoder.frames == 50
    assert all(p[0] & 0x04 == 0 for p in packets)  # RFC 6716 TOC byte: the stereo flag is clear
    assert 16000 <= sum(map(len, packets)) * 8 <= 48000  # 50 frames = 1 s: ≈ 32 kbit/s, FEC included
    heard = decode(packets)[RATE // 5 :]  # after the codec's start-up
    assert magnitude_db(heard, 1000, RATE) - magnitude_db(signal, 1000, RATE) == pytest.approx(0, abs=1.5)
    with pytest.raises(ValueError, match="960 samples"):
        encoder.encode(signal[:160])


def test_shared_stream_encodes_once_per_tick_and_drops_idle_streams() -> None:
    shared = SharedOpus()
    frame = tone(440, FRAME, 5000, rate=RATE)
    first = [shared.packet("room", 1, frame) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    assert (shared.encodes, shared.shares) == (1, 2)
    again = tone(440, FRAME, 5000, rate=RATE)  # a new tick's frame, equal values but another object
    shared.packet("room", 2, again)
    shared.packet("room", 2, frame)  # another frame in the same tick: encoded, not the first one's packet
    assert shared.encodes == 3
    shared.packet("other", 200, frame)
    assert len(shared) == 1  # "room" was idle for more than a second


class ToneTrack:
    """What aiortc's receiver gives a leg: decoded frames, here of a tone (stereo, as aiortc decodes)."""

    def __init__(self, freq: float) -> None:
        self.signal = tone(freq, FRAME * 500, 6000, rate=RATE)
        self.position = 0

    async def recv(self) -> object:
        import av

        await asyncio.sleep(0)
        part = self.signal[self.position : self.position + FRAME]
        self.position += FRAME
        stereo = np.repeat(part, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, "s16", "stereo")
        frame.sample_rate = RATE
        return frame


class Closable:
    """The peer connection's part a leg uses once it has its track: closing."""

    closed = False

    async def close(self) -> None:
        self.closed = True


def test_silent_browsers_share_the_encode_and_a_talker_gets_its_own() -> None:
    asyncio.run(silent_browsers_share_the_encode())


async def silent_browsers_share_the_encode() -> None:
    engine = Engine()
    shared = SharedOpus()
    legs = [WebRtcLeg(f"web-{i}", pc=Closable(), shared=shared) for i in range(4)]
    phone = BufferLeg("phone", 8000, tone(700, 8000 * 2, 6000, rate=8000))
    for leg in legs:
        engine.join("room", leg)
    engine.join("room", phone)
    legs[0].receive_from(ToneTrack(1000))  # one browser talks, three listen
    packets: dict[str, list[bytes]] = {leg.id: [] for leg in legs}
    for _ in range(40):
        await asyncio.sleep(0.001)  # the talker's frames arrive
        engine.tick()
        for leg in legs:  # what aiortc's sender takes, tick by tick
            packets[leg.id] += [leg.track.packets.get_nowait() for _ in range(leg.track.packets.qsize())]
    # Ticks where the browser talked: its frame is its own (the phone without itself), the three listeners share
    # one encode of the mix of both. Each tick at most one shared encode for the room.
    assert shared.encodes <= engine.ticks
    assert shared.shares >= 2 * (engine.ticks - 5)
    assert all(len(sent) == engine.ticks for sent in packets.values())
    assert packets["web-1"] == packets["web-2"] == packets["web-3"]  # the same bytes to each listener
    talker = decode(packets["web-0"])
    listener = decode(packets["web-1"])
    assert magnitude_db(listener, 1000, RATE) > magnitude_db(talker, 1000, RATE) + 30  # a talker does not hear itself
    assert magnitude_db(talker, 700, RATE) == pytest.approx(magnitude_db(listener, 700, RATE), abs=3)
    for leg in legs:
        engine.leave(leg.id)
    await asyncio.sleep(0)  # the legs' reader tasks end
    assert all(leg.closed for leg in legs)
