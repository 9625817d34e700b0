"""Short tones the room hears when someone joins (rising) or leaves (falling): no words, no language."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _beeps(freqs: tuple[float, ...], rate_hz: int, beep_ms: int = 90, gap_ms: int = 40) -> npt.NDArray[np.int16]:
    n = rate_hz * beep_ms // 1000
    t = np.arange(n) / rate_hz
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades: no clicks
    gap = np.zeros(rate_hz * gap_ms // 1000)
    parts: list[npt.NDArray[np.float64]] = []
    for hz in freqs:
        parts += [6000 * ramp * np.sin(2 * np.pi * hz * t), gap]
    out: npt.NDArray[np.int16] = np.rint(np.concatenate(parts[:-1])).astype(np.int16)
    return out


def join_tone(rate_hz: int) -> npt.NDArray[np.int16]:
    return _beeps((660.0, 990.0), rate_hz)


def leave_tone(rate_hz: int) -> npt.NDArray[np.int16]:
    return _beeps((990.0, 660.0), rate_hz)
