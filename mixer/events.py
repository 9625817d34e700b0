"""Events the mixer reports each tick, for the room's participant list (who speaks, who is the main speaker)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MixerEvent:
    room_id: Hashable


@dataclass(frozen=True, slots=True)
class SpeakingStarted(MixerEvent):
    leg_id: Hashable


@dataclass(frozen=True, slots=True)
class SpeakingStopped(MixerEvent):
    leg_id: Hashable


@dataclass(frozen=True, slots=True)
class DominantSpeakerChanged(MixerEvent):
    """The room's main speaker changed (hysteresis: a challenger must stay louder for a while); None: nobody."""

    leg_id: Hashable | None
    previous: Hashable | None
