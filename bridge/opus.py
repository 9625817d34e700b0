"""Opus for the browser legs, encoded by the bridge: mono, cheap and low-delay, once per distinct frame.

aiortc encodes what a track gives it in stereo at 96 kbit/s, hopping to a worker thread for every 20 ms frame; a
track that gives it encoded packets instead is only packetised. So the bridge encodes itself, in the engine's tick:

- one :class:`OpusEncoder` per browser leg for the frames only that leg gets (a talker hears everyone but itself);
- one :class:`SharedOpus` stream per room for the frame several browser legs get in the same tick (everyone who is
  silent hears the same mix): encoded once, the packet's bytes sent to each of them.

A leg switches between its own encoder and its room's stream when it starts or stops talking; the receiving decoder
takes packets from either (Opus frames are self-delimiting), as conference bridges that share encodes do.
"""

from __future__ import annotations

import fractions
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 48000
FRAME = RATE // 50  # 20 ms
TIME_BASE = fractions.Fraction(1, RATE)
BITRATE = 32000  # wideband speech; what browsers send for a microphone
COMPLEXITY = 5  # libopus's default 10 costs up to 3 times the CPU for little on speech (bench/RESULTS.md)
APPLICATION = "lowdelay"  # CELT only: 65 µs a frame of speech here; "voip" (SILK/hybrid, in-band FEC) 150 µs
EXPECTED_LOSS_PCT = 5  # tells the encoder to spend some bits on FEC
IDLE_TICKS = 50  # a shared stream unused for 1 s is dropped (the room emptied or nobody listens)


class OpusEncoder:
    """One mono Opus stream at 48 kHz: 20 ms of int16 samples in, one packet out (libopus through PyAV)."""

    def __init__(
        self,
        bitrate: int = BITRATE,
        complexity: int = COMPLEXITY,
        application: str = APPLICATION,
        expected_loss_pct: int = EXPECTED_LOSS_PCT,
    ) -> None:
        import av

        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = bitrate
        self._codec.format = "s16"
        self._codec.layout = "mono"
        self._codec.sample_rate = RATE
        self._codec.time_base = TIME_BASE
        options = {"application": application, "compression_level": str(complexity)}
        if application == "voip":  # in-band FEC exists in the SILK layer only
            options |= {"fec": "1", "packet_loss": str(expected_loss_pct)}
        self._codec.options = options
        self._pts = 0
        self.frames = 0

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        import av

        if samples.shape != (FRAME,):
            raise ValueError(f"an Opus frame here is {FRAME} samples, not {samples.shape}")
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.int16).reshape(1, FRAME), "s16", "mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += FRAME
        self.frames += 1
        packets = self._codec.encode(frame)
        # libopus gives one packet per 20 ms frame, at once (no look-ahead buffering at this frame size).
        return b"".join(bytes(p) for p in packets)


@dataclass
class _Stream:
    encoder: OpusEncoder
    tick: int = -1
    frame: npt.NDArray[np.int16] | None = None
    packet: bytes = b""


class SharedOpus:
    """Per room, one encoder for the frame several browser legs get in one tick."""

    def __init__(self, bitrate: int = BITRATE, complexity: int = COMPLEXITY, application: str = APPLICATION) -> None:
        self.bitrate, self.complexity, self.application = bitrate, complexity, application  # of every browser leg
        self._streams: dict[Hashable, _Stream] = {}
        self._tick = -1
        self.encodes = 0  # frames encoded here
        self.shares = 0  # packets handed out without encoding again

    def packet(self, stream: Hashable, tick: int, frame: npt.NDArray[np.int16]) -> bytes:
        if tick != self._tick:
            self._tick = tick
            for key in [k for k, s in self._streams.items() if tick - s.tick > IDLE_TICKS]:
                del self._streams[key]
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream(self.encoder())
        if state.tick == tick and state.frame is frame:
            self.shares += 1
            return state.packet
        state.tick, state.frame = tick, frame
        state.packet = state.encoder.encode(frame)
        self.encodes += 1
        return state.packet

    def encoder(self) -> OpusEncoder:
        return OpusEncoder(self.bitrate, self.complexity, self.application)

    def __len__(self) -> int:
        return len(self._streams)
