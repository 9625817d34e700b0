"""A soft limiter for many mixes at once: sums of loud talkers never wrap and never clip flat.

Janus AudioBridge truncates int32 sums to int16 (wrap-around crackle); Asterisk saturates at each addition (order-
dependent distortion). Here each distinct output has its own gain, driven by its frame's peak:

- **gain**: aims at ``ceiling_dbfs`` for the frame's peak; it recovers slowly (``release_ms`` time constant) and
  falls within ``attack_ms`` — ending *before* the first sample that would go over, since the whole frame is known
  when its gain is decided (look-ahead inside the frame, so no added delay). The gain always moves along a
  per-sample ramp, so no step ("zipper") is heard at frame edges;
- **soft knee**: a sample still above ``knee_dbfs`` (only when a frame opens already overloaded, so the ramp had
  no room) is bent smoothly (tanh) towards full scale instead of being cut flat;
- an output whose peak stays under the ceiling, with its gain at rest (1), is left untouched, sample for sample.

It adds no delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mixer.frame import INT16_MAX, db_to_gain


@dataclass(frozen=True, slots=True)
class LimiterConfig:
    ceiling_dbfs: float = -1.0
    knee_dbfs: float = -0.5
    attack_ms: float = 1.0
    release_ms: float = 200.0


class Limiter:
    def __init__(self, config: LimiterConfig, sample_rate_hz: int, frame_samples: int) -> None:
        self.config = config
        self._ceiling = np.float32(db_to_gain(config.ceiling_dbfs) * INT16_MAX)
        self._knee = np.float32(db_to_gain(config.knee_dbfs) * INT16_MAX)
        frame_s = frame_samples / sample_rate_hz
        self._release = np.float32(1.0 - np.exp(-frame_s / (config.release_ms / 1000.0)))
        self._attack_samples = max(1, round(config.attack_ms * sample_rate_hz / 1000.0))
        n = np.arange(frame_samples, dtype=np.float32)
        self._index = n
        self._release_ramp = ((n + 1) / frame_samples).astype(np.float32)

    def process(self, mixes: npt.NDArray[np.float32], gains: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
        """Limit ``mixes`` (rows of float32 in int16 scale) in place; ``gains`` (one per row) carry over frames.

        Returns the int16 frames; ``gains`` is updated.
        """
        if len(mixes) == 0:
            return np.empty(mixes.shape, dtype=np.int16)
        peak = np.abs(mixes).max(axis=1)
        target = np.minimum(np.float32(1.0), self._ceiling / np.maximum(peak, np.float32(1.0)))
        attack = target < gains
        new = np.where(attack, target, gains + (target - gains) * self._release)
        busy = np.flatnonzero((new < 1.0) | (gains < 1.0))
        if busy.size:
            rows = mixes[busy]
            old, fresh = gains[busy, None], new[busy, None]
            ramp = np.broadcast_to(self._release_ramp, rows.shape).copy()
            attacking = np.flatnonzero(attack[busy])
            if attacking.size:
                # Reach the new gain by the first sample the old gain would push over the ceiling.
                over = np.abs(rows[attacking]) * old[attacking] > self._ceiling
                first_over = np.where(over.any(axis=1), over.argmax(axis=1), rows.shape[1] - 1)
                start = np.maximum(first_over - self._attack_samples, 0)
                length = np.maximum(first_over - start, 1)
                ramp[attacking] = np.clip((self._index - start[:, None]) / length[:, None], 0.0, 1.0)
            rows *= old + (fresh - old) * ramp
            magnitude = np.abs(rows)
            over = magnitude > self._knee
            if over.any():
                room = np.float32(INT16_MAX) - self._knee
                bent = self._knee + room * np.tanh((magnitude[over] - self._knee) / room)
                rows[over] = np.copysign(bent, rows[over])
            mixes[busy] = rows
            # A gain within a hair of 1 is 1: the output is then exact again.
            gains[busy] = np.where(new[busy] > 0.9999, np.float32(1.0), new[busy])
        out: npt.NDArray[np.int16] = np.rint(mixes).astype(np.int16)
        return out
