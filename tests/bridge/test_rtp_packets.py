"""RTP packets and the phones' jitter buffer (bridge/rtp/): every malformed datagram refused with its reason;
the buffer puts packets in their place whatever their order, drops duplicates, conceals a lost frame (quieter,
then silence), grows its delay when a packet comes too late and gives it back when the network calms down, starts
again on a new SSRC, and follows timestamps across their 32-bit wrap."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bridge.rtp.jitter import MAX_DELAY, MIN_DELAY, JitterBuffer
from bridge.rtp.packet import RtpError, RtpPacket, build, is_rtcp, parse

FRAME = 160


def test_a_packet_is_read_back_as_written() -> None:
    data = build(0, 65535, 0xFFFFFFFF, 0x1234ABCD, b"\xff" * 160, marker=True)
    assert parse(data) == RtpPacket(0, True, 65535, 0xFFFFFFFF, 0x1234ABCD, b"\xff" * 160)
    # CSRCs, an extension and padding are read past
    first = 0x80 | 0x20 | 0x10 | 2
    extended = struct.pack("!BBHII", first, 8, 7, 160, 99) + b"\x00" * 8 + struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    assert parse(extended + b"\xd5" * 160 + b"\x00\x00\x03").payload == b"\xd5" * 160
    assert not is_rtcp(data)
    assert is_rtcp(bytes([0x80, 200]) + b"\x00" * 26)  # a sender report on the same port


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "short"),
        (b"\x80\x00\x00", "short"),
        (b"\x40" + b"\x00" * 11 + b"x" * 20, "version"),
        (b"\x8f" + b"\x00" * 11 + b"x" * 20, "short"),  # 15 CSRCs in 32 bytes
        (b"\x90" + b"\x00" * 11 + b"\x00", "extension"),
        (b"\x90" + b"\x00" * 11 + b"\xbe\xde\x00\x09" + b"x" * 8, "short"),  # an extension longer than the packet
        (b"\xa0" + b"\x00" * 11, "padding"),
        (b"\xa0" + b"\x00" * 11 + b"xx\x00", "padding"),  # zero bytes of padding
        (b"\xa0" + b"\x00" * 11 + b"xx\x09", "padding"),  # more padding than payload
    ],
)
def test_a_malformed_datagram_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError) as refused:
        parse(data)
    assert refused.value.reason == reason


def frame(n: int) -> np.ndarray:
    return np.full(FRAME, 1000 + n, dtype=np.int16)  # each frame says which it is


def played(buffer: JitterBuffer, ticks: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(ticks):
        got = buffer.get()
        out.append(None if got is None else int(got[0]))
    return out


def test_packets_out_of_order_and_twice_are_played_once_in_order() -> None:
    buffer = JitterBuffer()
    buffer.put(7, 0, frame(0))
    for n in (2, 1, 1, 3, 2):
        buffer.put(7, n * FRAME, frame(n))
    assert buffer.stats.duplicates == 2
    assert played(buffer, 5) == [None] * MIN_DELAY + [1000, 1001, 1002, 1003][: 5 - MIN_DELAY]


def test_a_lost_frame_is_concealed_quieter_then_silence() -> None:
    buffer = JitterBuffer()
    buffer.put(7, 0, frame(0))
    assert played(buffer, MIN_DELAY + 1) == [None] * MIN_DELAY + [1000]
    # nothing more comes: the last frame again at half, a quarter, an eighth, then nothing
    assert played(buffer, 5) == [500, 250, 125, None, None]
    assert buffer.stats.concealed == 3


def test_a_late_packet_grows_the_delay_and_a_calm_network_gives_it_back() -> None:
    buffer = JitterBuffer()
    ts = 0
    buffer.put(7, ts, frame(0))
    played(buffer, MIN_DELAY + 1)
    # frame 1 is lost on the way and comes after its time: played over, then the delay grows by one
    buffer.get()
    buffer.put(7, FRAME, frame(1))
    assert buffer.stats.late == 1
    assert buffer.delay == MIN_DELAY + 1
    for n in range(2, 400):  # then regular packets, one per tick, and the shrink's two seconds pass
        buffer.put(7, n * FRAME, np.zeros(FRAME, dtype=np.int16))
        buffer.get()
    assert buffer.stats.shrunk >= 1
    assert MIN_DELAY <= buffer.delay < MAX_DELAY


def test_a_new_ssrc_starts_again_and_timestamps_wrap() -> None:
    buffer = JitterBuffer()
    start = 0xFFFFFFFF - 2 * FRAME + 1  # the third frame's timestamp wraps to 0x...
    for n in range(5):
        buffer.put(7, (start + n * FRAME) & 0xFFFFFFFF, frame(n))
    assert played(buffer, MIN_DELAY + 5) == [None] * MIN_DELAY + [1000, 1001, 1002, 1003, 1004]
    assert buffer.stats.resets == 0
    buffer.put(8, 123456, frame(9))  # the caller's side restarted its stream
    assert buffer.stats.resets == 1
    assert played(buffer, MIN_DELAY + 1)[-1] == 1009


def test_a_timestamp_jump_starts_the_timeline_again_and_comfort_noise_fills_a_silence() -> None:
    buffer = JitterBuffer()
    buffer.put(7, 0, frame(0))
    played(buffer, MIN_DELAY + 1)
    buffer.put(7, 10 * 8000 * 60, frame(5))  # ten minutes later on its clock
    assert buffer.stats.resets == 1
    assert played(buffer, MIN_DELAY + 1)[-1] == 1005
    buffer.comfort_noise(40)  # -40 dBov of background
    noise = [buffer.get() for _ in range(10)]
    assert all(n is not None for n in noise)
    rms = float(np.sqrt(np.mean(np.concatenate(noise).astype(np.float64) ** 2)))  # type: ignore[arg-type]
    assert 150 < rms < 330, rms  # 32767 × 10^(-40/20) / √2 ≈ 232


def test_a_jittery_network_is_absorbed_within_80_ms_and_a_calm_one_brings_the_delay_down() -> None:
    rng = np.random.default_rng(3)
    buffer = JitterBuffer()
    sent_ms = np.arange(1500) * 20.0  # 30 s of packets
    delays = np.concatenate([rng.uniform(0, 50, 750), rng.uniform(0, 3, 750)])  # 15 s jittery, then 15 s calm
    arrivals = sorted(zip(sent_ms + delays, range(1500), strict=True))
    out: list[int | None] = []
    at = 0
    for tick in range(1560):
        now = tick * 20.0 + 7.0  # the media clock's phase is not the phone's
        while at < len(arrivals) and arrivals[at][0] <= now:
            n = arrivals[at][1]
            buffer.put(7, n * FRAME, np.full(FRAME, n % 1000 + 1, dtype=np.int16))
            at += 1
        got = buffer.get()
        out.append(None if got is None else int(got[0]))
        if tick == 740:
            jittery_delay = buffer.delay
    heard = [v for v in out if v is not None]
    assert buffer.delay <= MAX_DELAY
    assert jittery_delay >= 2, "50 ms of jitter did not grow the delay"
    assert buffer.stats.late <= 10, buffer.stats  # a few while it grows, then none
    assert buffer.delay < jittery_delay, "a calm network did not bring the delay down"
    assert len(heard) >= 1500 - 10 - buffer.stats.shrunk
