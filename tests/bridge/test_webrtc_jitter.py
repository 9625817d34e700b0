"""A lost audio packet: aiortc's own jitter buffer keeps the extra delay for the rest of the call (aiortc #543);
the bridge's gives up on the lost packet and the delay comes back to its baseline."""

from __future__ import annotations

import asyncio

import numpy as np
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from bridge.opus import FRAME
from bridge.webrtc import AUDIO_REORDER, WebRtcLeg, skipping_jitter_buffer


def run(buffer: JitterBuffer, lost: set[int], count: int = 60) -> tuple[list[int], list[int]]:
    """Feed packets 0..count-1 (one 20 ms frame each) but the lost ones; (frames out in order, packets buffered
    after each arrival, i.e. the delay in frames)."""
    out: list[int] = []
    delay: list[int] = []
    for seq in range(count):
        if seq in lost:
            continue
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq)
        packet._data = seq.to_bytes(2, "big")  # type: ignore[attr-defined]
        _, frame = buffer.add(packet)
        if frame is not None:
            out.append(int.from_bytes(frame.data, "big"))
        delay.append(sum(p is not None for p in buffer._packets))
    return out, delay


def test_aiortc_buffer_keeps_the_delay_after_one_loss() -> None:
    _, delay = run(JitterBuffer(capacity=16, prefetch=4), lost={10})
    assert delay[5] == 4, "baseline: four frames wait"
    assert delay[-1] > 10, "aiortc's buffer no longer shows the bug: drop the workaround"


def test_bridge_buffer_returns_to_baseline_after_losses() -> None:
    buffer = skipping_jitter_buffer()(capacity=16, prefetch=4)
    out, delay = run(buffer, lost={10, 30, 31})
    assert delay[5] == 4
    assert delay[-1] == 4, f"the delay did not come back: {delay}"
    assert max(delay[20:29]) == 4, "back to baseline between the losses"
    assert out == [n for n in range(len(out) + 3) if n not in {10, 30, 31}][: len(out)], "frames out of order"
    assert buffer.skipped == 3


def test_bridge_buffer_as_installed_waits_for_one_late_packet_only() -> None:
    buffer = skipping_jitter_buffer()(capacity=16, prefetch=AUDIO_REORDER)
    out, delay = run(buffer, lost=set())
    assert delay[5] == 1, "one frame waits for the next packet (aiortc: four)"
    late = RtpPacket(payload_type=111, sequence_number=61, timestamp=960 * 61)
    late._data = (61).to_bytes(2, "big")  # type: ignore[attr-defined]
    for seq in (60, 62, 61, 63):  # 61 comes one packet late: still played, in order, and the delay is back at 1
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq)
        packet._data = seq.to_bytes(2, "big")  # type: ignore[attr-defined]
        _, frame = buffer.add(packet)
        if frame is not None:
            out.append(int.from_bytes(frame.data, "big"))
    assert out == list(range(63))
    assert buffer.skipped == 0
    assert sum(p is not None for p in buffer._packets) == 1
    out, delay = run(skipping_jitter_buffer()(capacity=16, prefetch=AUDIO_REORDER), lost={10, 30, 31})
    assert max(delay[12:29]) == 1, f"the delay did not come back: {delay}"
    assert delay[-1] == 1, f"the delay did not come back: {delay}"


class Closable:
    async def close(self) -> None:
        pass


def test_leg_buffer_shrinks_back_after_a_jitter_burst() -> None:
    """Frames arriving in a burst fill the leg's buffer; it gives the extra delay back, a frame a second."""

    async def scenario() -> list[int]:
        leg = WebRtcLeg("web-1", Closable())
        depth: list[int] = []
        frame = np.zeros(FRAME, np.int16)
        for tick in range(400):
            arrivals = 1 if tick != 50 else 4  # a burst: three frames that were held up arrive at once
            if tick in (47, 48, 49):
                arrivals = 0
            leg._incoming.extend(frame for _ in range(arrivals))
            leg.read()
            depth.append(len(leg._incoming))
        leg.close()
        await asyncio.sleep(0)
        return depth

    depth = asyncio.run(scenario())
    assert depth[45] == 0
    assert depth[50] == 3, "the burst leaves three frames waiting: 60 ms more delay"
    assert depth[120] == 2, f"the delay was not given back, a frame a second: {depth[::25]}"
    assert depth[-1] == 0, f"the delay was not given back, a frame a second: {depth[::25]}"
