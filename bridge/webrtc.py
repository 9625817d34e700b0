"""Browser participants: an aiortc peer connection as a :class:`bridge.leg.Leg` at 48 kHz.

What the browser sends is decoded by aiortc (Opus) into 20 ms frames; :meth:`WebRtcLeg.read` hands the engine one
frame per tick, mono, from a short buffer that grows with the network's jitter (up to ``MAX_BUFFERED`` frames) and
shrinks again by a frame a second when it held more than it needed. aiortc's own jitter buffer before it is replaced
for audio (:func:`install_audio_jitter_fix`): it passes each packet on as it comes and counts a gap as a loss
instead of holding every later packet back (a packet overtaken by a later one is dropped as lost).

What the engine writes is encoded at once in mono Opus (:mod:`bridge.opus`: the leg's own encoder, or its room's
shared one) and goes out through :class:`EngineTrack`, whose ``recv`` aiortc's sender awaits: the outgoing stream is
paced by the engine's clock, one packet per tick.

``host_addresses`` limits the ICE host candidates (aioice gathers every interface but loopback, with no setting):
tests pin it to 127.0.0.1, a deployment behind one public address may pin that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.leg import LegKind
from bridge.opus import FRAME, RATE, TIME_BASE, OpusEncoder, SharedOpus

log = logging.getLogger(__name__)

MAX_BUFFERED = 5  # 100 ms: beyond, the oldest frames are dropped
AUDIO_REORDER = 0  # later packets a missing one is waited for: none (aiortc holds 4 frames back: 80 ms of delay)
SETTLE_READS = 50  # once a second, a frame more than the buffer needed all that second is dropped


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
    """aiortc's jitter buffer for audio, rewritten so that nothing holds packets back.

    aiortc's buffer (capacity 16, prefetch 4 for audio) hands a frame out only once four more have arrived (80 ms),
    and only when the packets from its origin are contiguous: after one loss it waits until the buffer overflows,
    and the ~280 ms gathered meanwhile stay for the rest of the call (aiortc issue #543, still so in 1.16). Here an
    audio packet is a whole frame (Opus, G.711 and G.722 never span packets): the packet at the origin goes out as
    soon as it is there. A missing one is waited for only while at most ``prefetch`` later packets wait (a late
    packet within that is still played); beyond, it counts as lost and the next waiting frame goes out. One frame
    comes out per packet that arrives (aiortc's receiver takes one), so whatever waited behind a hole is a delay
    that stays: with ``prefetch`` 0 (as installed) a gap is a loss at once and nothing ever waits.
    """
    from aiortc.jitterbuffer import JitterBuffer, JitterFrame

    class SkippingJitterBuffer(JitterBuffer):
        skipped = 0  # packets given up as lost

        def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
            if self._origin is None:
                return None
            waiting = [n for n in range(self._capacity) if self._packets[(self._origin + n) % self._capacity]]
            if not waiting:
                return None
            if waiting[0] > 0:  # a hole at the origin
                if len(waiting) <= self._prefetch:
                    return None  # the missing packet may still come
                self.remove(waiting[0])  # lost
                self.skipped += waiting[0]
            packet = self._packets[self._origin % self._capacity]
            self.remove(1)
            if packet is None:  # pragma: no cover - the origin was just moved onto a waiting packet
                return None
            return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]

    return SkippingJitterBuffer


def install_audio_jitter_fix() -> None:
    """Have aiortc's receivers use :func:`skipping_jitter_buffer` for audio, waiting for at most ``AUDIO_REORDER``
    packets behind a missing one (video keeps aiortc's own)."""
    import aiortc.rtcrtpreceiver
    from aiortc.jitterbuffer import JitterBuffer

    skipping = skipping_jitter_buffer()

    def make(capacity: int, prefetch: int = 0, is_video: bool = False) -> Any:
        if is_video:
            return JitterBuffer(capacity=capacity, prefetch=prefetch, is_video=True)
        return skipping(capacity=capacity, prefetch=AUDIO_REORDER)

    aiortc.rtcrtpreceiver.JitterBuffer = make  # type: ignore[attr-defined,assignment]


_unpinned: list[Any] = []  # aioice's own get_host_addresses, once replaced


def pin_host_addresses(addresses: tuple[str, ...]) -> None:
    """Make aioice offer only these host addresses (none: every non-loopback interface, aioice's own way)."""
    import aioice.ice

    if not _unpinned:
        _unpinned.append(aioice.ice.get_host_addresses)
    if not addresses:
        aioice.ice.get_host_addresses = _unpinned[0]
        return
    pinned = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in pinned if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


class EngineTrack:
    """The audio track the bridge sends: Opus packets the engine's tick encoded, handed to aiortc's sender as it
    asks (a track that gives packets is only packetised by aiortc, not encoded again). Each packet gets this track's
    own timestamp, 20 ms after the last, whichever encoder made it."""

    def __new__(cls) -> Any:
        from aiortc import MediaStreamTrack

        class _Track(MediaStreamTrack):
            kind = "audio"

            def __init__(self) -> None:
                super().__init__()
                self.packets: asyncio.Queue[bytes] = asyncio.Queue(maxsize=MAX_BUFFERED)
                self._pts = 0

            def push(self, payload: bytes) -> None:
                if self.packets.full():  # the sender fell behind: keep the newest
                    self.packets.get_nowait()
                self.packets.put_nowait(payload)

            async def recv(self) -> Any:
                from av import Packet

                packet = Packet(await self.packets.get())
                packet.pts = self._pts
                packet.time_base = TIME_BASE
                self._pts += FRAME
                return packet

        return _Track()


class WebRtcLeg:
    """A browser's audio as an engine leg. ``shared`` is the app's :class:`bridge.opus.SharedOpus`: the engine
    calls :meth:`write_shared` when several browser legs of a room get the same frame in a tick."""

    def __init__(
        self, leg_id: str, pc: Any, on_close: Callable[[], None] | None = None, shared: SharedOpus | None = None
    ) -> None:
        self._id = leg_id
        self.pc = pc
        self.track = EngineTrack()
        self._incoming: deque[npt.NDArray[np.int16]] = deque()
        self._closed = False
        self._reader: asyncio.Task[None] | None = None
        self._on_close = on_close
        self._encoder: OpusEncoder | None = None  # made at the first frame only this leg gets
        self._shared = shared if shared is not None else SharedOpus()
        self.dropped = 0  # received frames dropped to keep the delay short
        self._reads = 0
        self._spare = MAX_BUFFERED  # the fewest frames left in the buffer after a read, since the last settling

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
        if self._closed:
            return None
        self._reads += 1
        frame = self._incoming.popleft() if self._incoming else None
        self._spare = min(self._spare, len(self._incoming))
        if self._reads % SETTLE_READS == 0:
            if self._spare > 0 and self._incoming:  # a frame was waiting all along: one less delay from now on
                self._incoming.popleft()
                self.dropped += 1
            self._spare = MAX_BUFFERED
        return frame

    def write(self, frame: npt.NDArray[np.int16]) -> None:
        if self._closed:
            return
        if self._encoder is None:
            self._encoder = self._shared.encoder()
        self.track.push(self._encoder.encode(frame))

    def write_shared(self, frame: npt.NDArray[np.int16], stream: Hashable, tick: int) -> None:
        if not self._closed:
            self.track.push(self._shared.packet(stream, tick, frame))

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
