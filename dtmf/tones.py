"""The DTMF repertoire (ITU-T Q.23) and exact synthesis of digits for prompts, dial-out and tests.

Levels are in dBm0 per tone: 0 dBm0 is a sine 3.14 dB below the full-scale sine of G.711 (the digital milliwatt,
ITU-T G.711 Table 5/6), i.e. amplitude 22,826 in 16-bit linear samples. *Twist* is the low-group (row) tone's level
minus the high-group (column) tone's: positive = "normal" twist (the high tone weaker, as a long line makes it),
negative = "reverse" twist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "0123456789*#ABCD"
DBM0_AMPLITUDE = 32767.0 * 10 ** (-3.14 / 20)


def frequencies(digit: str) -> tuple[float, float]:
    """(row, column) frequencies of ``digit``."""
    for row, keys in enumerate(KEYPAD):
        col = keys.find(digit.upper())
        if col >= 0 and len(digit) == 1:
            return ROW_HZ[row], COL_HZ[col]
    raise ValueError(f"not a DTMF digit: {digit!r} (expected one of {DIGITS})")


def digit_at(row: int, col: int) -> str:
    return KEYPAD[row][col]


def dbm0_to_amplitude(dbm0: float) -> float:
    return float(DBM0_AMPLITUDE * 10 ** (dbm0 / 20))


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """How to play digits: durations, level per tone, twist and frequency offsets (for tests of tolerance)."""

    on_ms: float = 100.0
    off_ms: float = 100.0
    level_dbm0: float = -10.0
    twist_db: float = 0.0
    row_offset_pct: float = 0.0
    col_offset_pct: float = 0.0


def synthesize(digit: str, samples: int, rate_hz: int, spec: ToneSpec = ToneSpec()) -> npt.NDArray[np.float64]:
    """One digit's tone pair, ``samples`` long, as floats in int16 scale (not yet rounded or clipped)."""
    row_hz, col_hz = frequencies(digit)
    row_hz *= 1 + spec.row_offset_pct / 100
    col_hz *= 1 + spec.col_offset_pct / 100
    row_amp = dbm0_to_amplitude(spec.level_dbm0 + max(spec.twist_db, 0.0) / 2 - max(-spec.twist_db, 0.0) / 2)
    col_amp = dbm0_to_amplitude(spec.level_dbm0 - max(spec.twist_db, 0.0) / 2 + max(-spec.twist_db, 0.0) / 2)
    t = np.arange(samples) / rate_hz
    tones: npt.NDArray[np.float64] = row_amp * np.sin(2 * np.pi * row_hz * t) + col_amp * np.sin(2 * np.pi * col_hz * t)
    return tones


def generate(digits: str, rate_hz: int = 8000, spec: ToneSpec = ToneSpec()) -> npt.NDArray[np.int16]:
    """``digits`` as a tone sequence: each digit ``on_ms`` of tone then ``off_ms`` of silence (16-bit, saturated)."""
    on = round(spec.on_ms * rate_hz / 1000)
    off = round(spec.off_ms * rate_hz / 1000)
    parts = []
    for digit in digits:
        parts.append(synthesize(digit, on, rate_hz, spec))
        parts.append(np.zeros(off))
    signal = np.concatenate(parts) if parts else np.zeros(0)
    out: npt.NDArray[np.int16] = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    return out
