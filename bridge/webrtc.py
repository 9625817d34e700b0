"""Browser participants: an aiortc peer connection as a :class:`bridge.leg.Leg` at 48 kHz.

What the browser sends is decoded by aiortc (Opus) into 20 ms frames; :meth:`WebRtcLeg.read` hands the engine one
frame per tick, mono, from a short buffer (at most ``MAX_BUFFERED`` frames: older ones are dropped, so delay does
not pile up). What the engine writes goes out through :class:`EngineTrack`, whose ``recv`` aiortc's sender awaits:
the outgoing stream is paced by the engine's clock, one frame per tick.

``host_addresses`` limits the ICE host candidates (aioice gathers every interface but loopback, with no setting):
tests pin it to 127.0.0.1, a deployment behind one public address may pin that.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.leg import LegKind

log = logging.getLogger(__name__)

RATE = 48000
FRAME = RATE // 50  # 20 ms
MAX_BUFFERED = 5  # 100 ms: beyond, the oldest frames are dropped


def audio_level_dbov(frame: Any) -> int:
    """RFC 6465 Appendix A audio level of an s16 frame, as aiortc's ``rtp.compute_audio_level_dbov`` computes it
    (same rounding and bounds) but with numpy: aiortc unpacks the samples one by one in Python (~0.3 ms a frame)."""
    count = frame.samples * len(frame.layout.channels)
    samples = np.frombuffer(frame.planes[0], dtype=np.int16, count=count).astype(np.float64)
    rms = float(np.sqrt(np.dot(samples, samples) / (frame.samples * 32767.0 * 32767.0)))
    if rms <= 0:
        return -127
    return round(min(max(20.0 * math.log10(rms), -127.0), 0.0))


def install_fast_audio_level() -> None:
    """Have aiortc's senders use :func:`audio_level_dbov` (they look the function up in ``aiortc.rtp`` per frame)."""
    import aiortc.rtp

    aiortc.rtp.compute_audio_level_dbov = audio_level_dbov


def skipping_jitter_buffer() -> type:
    """aiortc's jitter buffer, except that a lost audio packet no longer holds back every later one.

    aiortc's buffer (capacity 16, prefetch 4 for audio) hands out a frame only when the packets from its origin
    are contiguous: after one loss it waits until the buffer overflows, and the ~280 ms gathered meanwhile stay
    for the rest of the call (aiortc issue #543, still so in 1.16). Here, once more than ``prefetch`` packets wait
    in the buffer while the oldest frame cannot come out, the oldest waiting frame goes out anyway and a missing
    packet at the origin counts as lost: the delay returns to its baseline.
    """
    from aiortc.jitterbuffer import JitterBuffer, JitterFrame

    class SkippingJitterBuffer(JitterBuffer):
        skipped = 0  # packets given up as lost

        def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
            frame: JitterFrame | None = super()._remove_frame(sequence_number)
            if frame is not None or self._origin is None:
                return frame
            if sum(packet is not None for packet in self._packets) <= self._prefetch:
                return None  # a hole, but not enough behind it yet: the packet may still come
            while self._packets[self._origin % self._capacity] is None:  # the missing packets are lost
                self.remove(1)
                self.skipped += 1
            first = self._packets[self._origin % self._capacity]
            if first is None:  # pragma: no cover - more than prefetch packets wait, so one is found
                return None
            parts: list[bytes] = []
            count = 0
            while count < self._capacity:  # the oldest frame: its packets share a timestamp
                packet = self._packets[(self._origin + count) % self._capacity]
                if packet is None or packet.timestamp != first.timestamp:
                    break
                parts.append(packet._data)  # type: ignore[attr-defined]  # aiortc's own field for the payload
                count += 1
            self.remove(count)
            return JitterFrame(data=b"".join(parts), timestamp=first.timestamp)

    return SkippingJitterBuffer


def install_audio_jitter_fix() -> None:
    """Have aiortc's receivers use :func:`skipping_jitter_buffer` for audio (video keeps aiortc's own)."""
    import aiortc.rtcrtpreceiver
    from aiortc.jitterbuffer import JitterBuffer

    skipping = skipping_jitter_buffer()

    def make(capacity: int, prefetch: int = 0, is_video: bool = False) -> Any:
        if is_video:
            return JitterBuffer(capacity=capacity, prefetch=prefetch, is_video=True)
        return skipping(capacity=capacity, prefetch=prefetch)

    aiortc.rtcrtpreceiver.JitterBuffer = make  # type: ignore[attr-defined,assignment]


def pin_host_addresses(addresses: tuple[str, ...]) -> None:
    """Make aioice offer only these host addresses (it offers every non-loopback interface otherwise)."""
    if not addresses:
        return
    import aioice.ice

    pinned = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in pinned if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


class EngineTrack:
    """The audio track the bridge sends: frames the engine writes, handed to aiortc's sender as it asks."""

    def __new__(cls) -> Any:
        from aiortc import MediaStreamTrack

        class _Track(MediaStreamTrack):
            kind = "audio"

            def __init__(self) -> None:
                super().__init__()
                self.frames: asyncio.Queue[npt.NDArray[np.int16]] = asyncio.Queue(maxsize=MAX_BUFFERED)
                self._pts = 0

            def push(self, samples: npt.NDArray[np.int16]) -> None:
                if self.frames.full():  # the sender fell behind: keep the newest
                    self.frames.get_nowait()
                self.frames.put_nowait(samples)

            async def recv(self) -> Any:
                from av import AudioFrame

                samples = await self.frames.get()
                frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
                frame.planes[0].update(samples.astype(np.int16).tobytes())
                frame.sample_rate = RATE
                frame.pts = self._pts
                frame.time_base = fractions.Fraction(1, RATE)
                self._pts += FRAME
                return frame

        return _Track()


class WebRtcLeg:
    def __init__(self, leg_id: str, pc: Any, on_close: Callable[[], None] | None = None) -> None:
        self._id = leg_id
        self.pc = pc
        self.track = EngineTrack()
        self._incoming: deque[npt.NDArray[np.int16]] = deque()
        self._closed = False
        self._reader: asyncio.Task[None] | None = None
        self._on_close = on_close
        self.dropped = 0  # received frames dropped to keep the delay short

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> LegKind:
        return LegKind.WEBRTC

    @property
    def rate_hz(self) -> int:
        return RATE

    @property
    def closed(self) -> bool:
        return self._closed

    def receive_from(self, remote: Any) -> None:
        """Start taking the browser's audio track."""
        self._reader = asyncio.get_running_loop().create_task(self._read(remote), name=f"rx {self._id}")

    async def _read(self, remote: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        try:
            while not self._closed:
                frame = await remote.recv()
                pcm = frame.to_ndarray()  # packed s16: shape (1, samples × channels)
                channels = len(frame.layout.channels)
                mono = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16) if channels > 1 else pcm.reshape(-1)
                for start in range(0, len(mono) - FRAME + 1, FRAME):
                    self._incoming.append(mono[start : start + FRAME])
                while len(self._incoming) > MAX_BUFFERED:
                    self._incoming.popleft()
                    self.dropped += 1
        except MediaStreamError:  # the browser's track ended
            log.info("leg %s: the browser's audio ended", self._id)
            self.close()

    def read(self) -> npt.NDArray[np.int16] | None:
        if self._closed or not self._incoming:
            return None
        return self._incoming.popleft()

    def write(self, frame: npt.NDArray[np.int16]) -> None:
        if not self._closed:
            self.track.push(frame)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self.pc.close(), name=f"close {self._id}")
        if self._on_close is not None:
            self._on_close()
