"""A leg that plays a buffer and records what it hears: voice prompts, recordings, and tests of the engine."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bridge.leg import LegKind


class BufferLeg:
    """Plays ``source`` (int16 at ``rate_hz``) frame by frame, then silence (or nothing, if ``stop_at_end``);
    keeps every frame written to it."""

    def __init__(
        self,
        leg_id: str,
        rate_hz: int,
        source: npt.NDArray[np.int16] | None = None,
        *,
        frame_ms: int = 20,
        stop_at_end: bool = False,
    ) -> None:
        self._id = leg_id
        self._rate = rate_hz
        self._frame = rate_hz * frame_ms // 1000
        self._source = np.zeros(0, np.int16) if source is None else np.asarray(source, np.int16)
        self._position = 0
        self._stop_at_end = stop_at_end
        self._closed = False
        self.heard: list[npt.NDArray[np.int16]] = []

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> LegKind:
        return LegKind.LOCAL

    @property
    def rate_hz(self) -> int:
        return self._rate

    @property
    def closed(self) -> bool:
        return self._closed

    def read(self) -> npt.NDArray[np.int16] | None:
        if self._closed:
            return None
        chunk = self._source[self._position : self._position + self._frame]
        self._position += self._frame
        if len(chunk) < self._frame:
            if self._stop_at_end and len(chunk) == 0:
                return None
            chunk = np.concatenate([chunk, np.zeros(self._frame - len(chunk), np.int16)])
        return chunk

    def write(self, frame: npt.NDArray[np.int16]) -> None:
        if not self._closed:
            self.heard.append(frame.copy())

    def close(self) -> None:
        self._closed = True

    def recording(self) -> npt.NDArray[np.int16]:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)
