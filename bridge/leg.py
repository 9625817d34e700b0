"""The ``Leg`` protocol: one participant's audio connection, whatever carries it (SIP, WebRTC, a local player).

The engine asks every leg for one frame per tick at the leg's own rate and codec edge (``read``), and gives it one
back (``write``). A leg that has nothing yet returns None (the room hears silence from it, never a stall); a leg
that raises is closed and taken out, and its room goes on.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


class LegKind(StrEnum):
    SIP = "sip"
    WEBRTC = "webrtc"
    LOCAL = "local"  # prompts, recordings, tests


@runtime_checkable
class Leg(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> LegKind: ...

    @property
    def rate_hz(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    def read(self) -> npt.NDArray[np.int16] | None:
        """The next frame (rate_hz × frame_ms samples), or None when none has arrived in time."""
        ...

    def write(self, frame: npt.NDArray[np.int16]) -> None:
        """One frame for the participant to hear. Must not block. The array is the engine's, valid during the call
        only (the mixer reuses its buffers): a leg that keeps it keeps a copy."""
        ...

    def close(self) -> None:
        """Release the leg; safe to call twice."""
        ...


@runtime_checkable
class SharedWriter(Protocol):
    """A leg that can take a frame other legs of its room also get this tick as one shared stream (the engine calls
    ``write_shared`` instead of ``write`` then): e.g. browser legs encode it once for all of them."""

    def write_shared(self, frame: npt.NDArray[np.int16], stream: Hashable, tick: int) -> None: ...


@dataclass
class LegStats:
    """What the engine saw of a leg: frames received, missing (None or wrong size), written, last level."""

    frames_in: int = 0
    missing: int = 0
    frames_out: int = 0
    level_dbfs: float = -120.0
