"""A SIP call as a :class:`bridge.leg.Leg`: 20 ms frames in and out of baresip-python's PCM buffers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from baresip.call import CallState
from baresip.errors import AudioNotActive, AudioRestarted

from bridge.leg import LegKind

log = logging.getLogger(__name__)
TRIM_EVERY = 25  # writes between two looks at the stack's transmit buffer (a look costs a native call)


class SipLeg:
    """Reads and writes one call's audio at the negotiated rate (8 kHz for G.711)."""

    def __init__(self, leg_id: str, call: Any, rate_hz: int, frame_ms: int = 20) -> None:
        self._id = leg_id
        self._call = call
        self._rate = rate_hz
        self._frame_bytes = rate_hz * frame_ms // 1000 * 2
        self._partial = b""
        self._closed = False
        self._hangup: asyncio.Task[None] | None = None
        self.restarts = 0  # audio renegotiations seen (re-INVITE, hold/resume)
        self.trimmed = 0  # frames not written because the stack's transmit buffer already held two
        self._writes = 0
        self.heard = False  # some audio came from the phone (the first-media timeout of the gateway asks)
        self._audio = call.audio  # one object for the call's life: it re-binds itself after a renegotiation

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> LegKind:
        return LegKind.SIP

    @property
    def rate_hz(self) -> int:
        return self._rate

    @property
    def closed(self) -> bool:
        # Asked several times per tick for every leg: an identity test, nothing more (profiled: 1.8 s of 37 s).
        return self._closed or self._call.state is CallState.CLOSED

    def read(self) -> npt.NDArray[np.int16] | None:
        if self._closed or self._call.state is CallState.CLOSED:
            return None
        need = self._frame_bytes - len(self._partial)
        try:
            chunk = self._audio.read(need)
        except AudioRestarted:  # a re-INVITE replaced the streams (the stack sends one just after answering)
            self._partial = b""
            self.restarts += 1
            return None
        except AudioNotActive:  # between two negotiations, or on hold: nothing to read this tick
            return None
        if chunk:
            self.heard = True
        if len(chunk) != self._frame_bytes:
            self._partial += chunk
            if len(self._partial) < self._frame_bytes:
                return None  # not yet: the room hears silence from this leg this tick
            chunk, self._partial = self._partial, b""
        # Read-only view of the bytes: the engine only reads it (stacking the frames of a tick copies them).
        return np.frombuffer(chunk, dtype=np.int16)

    def write(self, frame: npt.NDArray[np.int16]) -> None:
        if self._closed or self._call.state is CallState.CLOSED:
            return
        # A renegotiation drops this frame; the next one goes to the new streams (the binding is re-probed).
        self._writes += 1
        try:
            # The stack's sending thread takes a frame every 20 ms of its own clock; the engine's tick writes one
            # every 20 ms of the media clock. What waits between the two is delay: one frame is the margin the
            # two clocks' phases need, more (a start-up burst, a late tick caught up) stays for the whole call.
            # Twice a second, a frame is left out when two already wait.
            if self._writes % TRIM_EVERY == 0 and self._audio.stats().tx_buffered >= 2 * self._frame_bytes:
                self.trimmed += 1
                return
            self._audio.write(frame.tobytes() if frame.dtype == np.int16 else frame.astype(np.int16).tobytes())
        except AudioRestarted:  # noticed here before read() did: the same renegotiation, counted once
            self._partial = b""
            self.restarts += 1
        except AudioNotActive:
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # no loop: the runtime is shutting down anyway
            self._hangup = asyncio.get_running_loop().create_task(self._end(), name=f"hangup {self._id}")

    async def _end(self) -> None:
        try:
            await self._call.hangup()
        except Exception:  # already gone (the caller hung up first)
            log.debug("leg %s: hangup after the call ended", self._id)
