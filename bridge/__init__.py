"""Call legs and the media clock: the ``Leg`` protocol, SIP legs (``bridge/sip/``, ``bridge/rtp/``),
WebRTC legs (aiortc), voice prompts and the engine that ticks every room each 20 ms."""

from __future__ import annotations

from bridge.clock import ClockStats, MediaClock
from bridge.engine import Engine
from bridge.leg import Leg, LegKind, LegStats
from bridge.local import BufferLeg

__all__ = ["BufferLeg", "ClockStats", "Engine", "Leg", "LegKind", "LegStats", "MediaClock"]
