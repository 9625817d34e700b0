"""A lost audio packet: aiortc's own jitter buffer keeps the extra delay for the rest of the call (aiortc #543);
the bridge's gives up on the lost packet and the delay comes back to its baseline."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from bridge.webrtc import skipping_jitter_buffer


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
