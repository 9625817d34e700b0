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


def test_bridge_buffer_passes_packets_on_at_once_and_losses_add_no_delay() -> None:
    buffer = skipping_jitter_buffer()(capacity=16, prefetch=AUDIO_REORDER)
    out, delay = run(buffer, lost={10, 30, 31})
    assert max(delay) == 0, f"a frame waited in the buffer: {delay}"
    assert out == [n for n in range(60) if n not in {10, 30, 31}], "frames lost or out of order"
    assert buffer.skipped == 3


def packets_in(buffer: JitterBuffer, order: list[int]) -> list[int]:
    out = []
    for seq in order:
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=960 * seq)
        packet._data = seq.to_bytes(2, "big")  # type: ignore[attr-defined]
        _, frame = buffer.add(packet)
        if frame is not None:
            out.append(int.from_bytes(frame.data, "big"))
    return out


def test_a_packet_overtaken_by_a_later_one_is_dropped_or_waited_for() -> None:
    installed = skipping_jitter_buffer()(capacity=16, prefetch=AUDIO_REORDER)
    assert packets_in(installed, [0, 1, 3, 2, 4, 5]) == [0, 1, 3, 4, 5], "as installed: 2 came late, lost"
    assert sum(p is not None for p in installed._packets) == 0
    patient = skipping_jitter_buffer()(capacity=16, prefetch=1)
    assert packets_in(patient, [0, 1, 3, 2, 4, 5]) == [0, 1, 2, 3, 4], "waiting for one: 2 is played, in order"
    assert sum(p is not None for p in patient._packets) == 1, "…at the cost of a frame of delay from then on"
    assert patient.skipped == 0


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
