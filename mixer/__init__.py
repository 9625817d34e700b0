"""Pure audio math on numpy arrays: frame format, resampling, voice activity, N-1 mixing, top-N, limiter.
No I/O, no asyncio."""

from __future__ import annotations

from mixer.events import DominantSpeakerChanged, MixerEvent, SpeakingStarted, SpeakingStopped
from mixer.limiter import Limiter, LimiterConfig
from mixer.mixer import Mixer, MixerConfig, MixResult, OutputKind, UnknownLeg
from mixer.resample import Resampler
from mixer.vad import VadConfig, VoiceActivity

__all__ = [
    "DominantSpeakerChanged",
    "Limiter",
    "LimiterConfig",
    "MixResult",
    "Mixer",
    "MixerConfig",
    "MixerEvent",
    "OutputKind",
    "Resampler",
    "SpeakingStarted",
    "SpeakingStopped",
    "UnknownLeg",
    "VadConfig",
    "VoiceActivity",
]
