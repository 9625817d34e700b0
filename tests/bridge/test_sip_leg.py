"""The SIP leg's transmit side: what waits in the stack's buffer beyond one frame is delay, and is given back."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from baresip.call import CallState
from baresip.errors import AudioRestarted

from bridge.sip.leg import TRIM_EVERY, SipLeg

FRAME_BYTES = 320  # 20 ms at 8 kHz


@dataclass
class StackAudio:
    """The stack's side of the call's audio as the leg sees it: a transmit buffer its sending thread drains."""

    buffered: int = 0
    written: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.buffered += len(data)

    def send_one(self) -> None:  # the stack's sending thread, every 20 ms of its clock
        self.buffered = max(0, self.buffered - FRAME_BYTES)

    def stats(self) -> object:
        return type("AudioStats", (), {"tx_buffered": self.buffered})()


@dataclass
class StackCall:
    audio: StackAudio
    state: CallState = CallState.ESTABLISHED


def test_a_start_up_burst_is_given_back_and_a_one_frame_margin_kept() -> None:
    audio = StackAudio()
    leg = SipLeg("sip-1", StackCall(audio), 8000)
    frame = np.zeros(160, np.int16)
    for _ in range(3):  # three ticks before the stack starts sending: 60 ms wait from then on
        leg.write(frame)
    depth = []
    for _ in range(10 * TRIM_EVERY):
        leg.write(frame)
        depth.append(audio.buffered)
        audio.send_one()
    assert depth[0] == 4 * FRAME_BYTES
    # Right after a write: the frame the stack sends next and the one just written (the margin), no more.
    assert depth[-1] == 2 * FRAME_BYTES, f"still {depth[-1] // FRAME_BYTES} frames waiting after the write"
    assert leg.trimmed == 2
    assert min(depth[2 * TRIM_EVERY :]) == 2 * FRAME_BYTES, "the leg must not starve the stack"


def test_a_renegotiation_noticed_while_writing_is_counted() -> None:
    class Renegotiated(StackAudio):
        def stats(self) -> object:
            raise AudioRestarted("the streams were replaced")

    audio = Renegotiated()
    leg = SipLeg("sip-1", StackCall(audio), 8000)
    for _ in range(TRIM_EVERY):  # the look at the buffer meets the renegotiation
        leg.write(np.zeros(160, np.int16))
    assert leg.restarts == 1
    assert len(audio.written) == TRIM_EVERY - 1  # that frame is dropped, the others went out
