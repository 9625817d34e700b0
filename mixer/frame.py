"""The internal audio format and level arithmetic.

Inside Passerelle audio is mono signed 16-bit PCM at 48 kHz in 20 ms frames (960 samples); sums are computed in
float32, where integer sums of int16 samples stay exact up to 2²⁴. Levels are in dBFS: 0 dBFS is a full-scale square
wave (RMS 32768), so a full-scale sine is about −3 dBFS.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FULL_SCALE = 32768.0
INT16_MAX = 32767
INT16_MIN = -32768

Int16Frames = npt.NDArray[np.int16]
Float32Frames = npt.NDArray[np.float32]


def frame_samples(sample_rate_hz: int, frame_ms: int) -> int:
    samples, rest = divmod(sample_rate_hz * frame_ms, 1000)
    if rest or samples <= 0:
        raise ValueError(f"{frame_ms} ms at {sample_rate_hz} Hz is not a whole number of samples")
    return samples


def rms_dbfs(x: npt.NDArray[np.generic], axis: int = -1) -> npt.NDArray[np.float64]:
    """RMS level in dBFS along ``axis`` (−inf clamped to −200 for digital silence)."""
    xf = np.asarray(x, dtype=np.float64)
    power = np.mean(xf * xf, axis=axis) / (FULL_SCALE * FULL_SCALE)
    level: npt.NDArray[np.float64] = 10.0 * np.log10(np.maximum(power, 1e-20))
    return level


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def to_int16(x: npt.NDArray[np.floating]) -> Int16Frames:
    """Round to the nearest integer and saturate into int16 (no wrap-around); ``x`` is used as scratch space."""
    np.rint(x, out=x)
    np.clip(x, INT16_MIN, INT16_MAX, out=x)
    out: Int16Frames = x.astype(np.int16)
    return out
