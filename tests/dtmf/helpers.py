"""Detection harness and line impairments for the DTMF tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dtmf.detector import DetectorConfig, DigitEvent, DtmfDetector
from dtmf.tones import ToneSpec, dbm0_to_amplitude, generate, synthesize


def detect(
    signal: npt.NDArray[np.generic], rate: int = 8000, frame: int | None = None, config: DetectorConfig | None = None
) -> list[DigitEvent]:
    """Run one leg through the detector in frames; return the finished digits (with start and end)."""
    detector = DtmfDetector(rate, 1, config)
    step = frame or rate // 50
    x = np.clip(np.rint(np.asarray(signal, dtype=np.float64)), -32768, 32767).astype(np.int16)
    events: list[DigitEvent] = []
    for i in range(0, len(x), step):
        events += detector.process(x[i : i + step]).events
    events += detector.process(np.zeros(rate // 5, np.int16)).events  # let the last digit end
    return [e for e in events if e.end is not None]


def digits(signal: npt.NDArray[np.generic], rate: int = 8000, frame: int | None = None) -> str:
    return "".join(e.digit for e in detect(signal, rate, frame))


def pad(signal: npt.NDArray[np.generic], rate: int = 8000, ms: float = 100) -> npt.NDArray[np.float64]:
    gap = np.zeros(round(rate * ms / 1000))
    return np.concatenate([gap, np.asarray(signal, dtype=np.float64), gap])


def burst(digit: str, ms: float, rate: int = 8000, **spec: float) -> npt.NDArray[np.float64]:
    return synthesize(digit, round(rate * ms / 1000), rate, ToneSpec(**spec))


def white_noise(samples: int, dbm0: float, seed: int = 0) -> npt.NDArray[np.float64]:
    """White noise whose power equals a sine at ``dbm0``."""
    sigma = dbm0_to_amplitude(dbm0) / np.sqrt(2)
    return np.random.default_rng(seed).normal(0.0, sigma, samples)


def mulaw_round_trip(x: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """G.711 μ-law encode then decode (continuous companding law, 8-bit quantised)."""
    y = np.clip(np.asarray(x, dtype=np.float64) / 32768.0, -1, 1)
    mu = 255.0
    code = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127)
    back = np.sign(code) * (np.expm1(np.abs(code) / 127 * np.log1p(mu)) / mu)
    out: npt.NDArray[np.float64] = back * 32768.0
    return out


def alaw_round_trip(x: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    """G.711 A-law encode then decode (continuous companding law, 8-bit quantised)."""
    y = np.clip(np.asarray(x, dtype=np.float64) / 32768.0, -1, 1)
    a = 87.6
    ay = np.abs(y)
    compressed = np.where(
        ay < 1 / a, a * ay / (1 + np.log(a)), (1 + np.log(np.maximum(a * ay, 1e-12))) / (1 + np.log(a))
    )
    code = np.round(compressed * 127)
    c = code / 127
    expanded = np.where(c < 1 / (1 + np.log(a)), c * (1 + np.log(a)) / a, np.exp(c * (1 + np.log(a)) - 1) / a)
    out: npt.NDArray[np.float64] = np.sign(y) * expanded * 32768.0
    return out


__all__ = ["alaw_round_trip", "burst", "detect", "digits", "generate", "mulaw_round_trip", "pad", "white_noise"]
