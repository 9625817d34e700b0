"""Voice activity per leg: energy against an adaptive noise floor, with onset detection and hangover.

Vectorised over every leg of every room: one call updates all legs' state from a ``(legs, samples)`` frame block.

- **Onset**: a frame turns active when any of its 5 ms sub-blocks rises ``onset_db`` above the leg's noise floor, so a
  syllable starting late in a frame is caught in that frame, not the next.
- **Sustain**: an active leg stays active while the whole frame stays ``sustain_db`` above the floor (a lower bar:
  hysteresis), then for ``hangover_ms`` more, so soft word endings and short pauses are not cut.
- **Noise floor**: falls quickly to quieter frames, rises slowly (``floor_rise_db_per_s``) so a steady noise (a fan, a
  car) stops counting as speech after a few seconds while speech — which always has pauses — keeps pulling it down.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mixer.frame import FULL_SCALE


@dataclass(frozen=True, slots=True)
class VadConfig:
    onset_db: float = 9.0
    sustain_db: float = 5.0
    min_level_dbfs: float = -52.0  # quieter than this is never speech (a distant murmur, line noise)
    hangover_ms: int = 300
    floor_rise_db_per_s: float = 3.0
    floor_fall: float = 0.3  # fraction of the gap closed per frame when the level is under the floor
    initial_floor_dbfs: float = -65.0
    sub_blocks: int = 4
    # Energy is measured on every 4th sample: at 48 kHz that is still 60 samples per 5 ms block, and the energy of
    # a sub-sampled signal equals the full one on average (aliasing folds energy, it does not remove it).
    decimation: int = 4
    level_attack: float = 0.6  # smoothing of the speech level used for ranking talkers
    level_release: float = 0.1


SILENCE_DBFS = -120.0


class VoiceActivity:
    """State for ``capacity`` legs, indexed by slot; the owner moves slots with :meth:`move`."""

    def __init__(self, config: VadConfig, frame_ms: int, capacity: int) -> None:
        self.config = config
        self._hangover_frames = max(1, round(config.hangover_ms / frame_ms))
        self._rise = config.floor_rise_db_per_s * frame_ms / 1000.0
        self.floor_db = np.empty(0, dtype=np.float32)
        self.hang = np.empty(0, dtype=np.int32)
        self.active = np.empty(0, dtype=bool)
        self.level_db = np.empty(0, dtype=np.float32)  # smoothed speech level, SILENCE_DBFS when inactive
        self.frame_db = np.empty(0, dtype=np.float32)  # this frame's RMS level
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        old = len(self.active)
        if capacity <= old:
            return
        extra = capacity - old
        self.floor_db = np.concatenate([self.floor_db, np.full(extra, self.config.initial_floor_dbfs, np.float32)])
        self.hang = np.concatenate([self.hang, np.zeros(extra, np.int32)])
        self.active = np.concatenate([self.active, np.zeros(extra, bool)])
        self.level_db = np.concatenate([self.level_db, np.full(extra, SILENCE_DBFS, np.float32)])
        self.frame_db = np.concatenate([self.frame_db, np.full(extra, SILENCE_DBFS, np.float32)])

    def reset(self, slot: int) -> None:
        self.floor_db[slot] = self.config.initial_floor_dbfs
        self.hang[slot] = 0
        self.active[slot] = False
        self.level_db[slot] = SILENCE_DBFS
        self.frame_db[slot] = SILENCE_DBFS

    def move(self, src: int, dst: int) -> None:
        for array in (self.floor_db, self.hang, self.active, self.level_db, self.frame_db):
            array[dst] = array[src]

    def update(self, frames: npt.NDArray[np.int16]) -> None:
        """Advance the first ``len(frames)`` legs by one frame each (int16)."""
        n = frames.shape[0]
        blocks = self.config.sub_blocks
        sampled = frames[:, :: self.config.decimation].astype(np.float32)
        samples = sampled.shape[1] - sampled.shape[1] % blocks
        split = sampled[:, :samples].reshape(n, blocks, samples // blocks)
        energy = np.einsum("lbs,lbs->lb", split, split)
        energy *= np.float32(blocks / (samples * FULL_SCALE * FULL_SCALE))
        np.maximum(energy, np.float32(1e-12), out=energy)
        block_db = 10.0 * np.log10(energy)
        frame_db = 10.0 * np.log10(energy.mean(axis=1))
        peak_db = block_db.max(axis=1)

        cfg = self.config
        floor = self.floor_db[:n]
        audible = frame_db > cfg.min_level_dbfs
        onset = (peak_db > floor + cfg.onset_db) & (peak_db > cfg.min_level_dbfs)
        sustain = self.active[:n] & (frame_db > floor + cfg.sustain_db) & audible
        hang = self.hang[:n]
        np.copyto(hang, np.where(onset | sustain, self._hangover_frames, np.maximum(hang - 1, 0)))
        np.greater(hang, 0, out=self.active[:n])

        below = frame_db < floor
        floor += np.where(below, (frame_db - floor) * np.float32(cfg.floor_fall), np.float32(self._rise))

        level = self.level_db[:n]
        speaking = self.active[:n]
        coeff = np.where(frame_db > level, np.float32(cfg.level_attack), np.float32(cfg.level_release))
        smoothed = np.where(level <= SILENCE_DBFS, frame_db, level + (frame_db - level) * coeff)
        np.copyto(level, np.where(speaking, smoothed, SILENCE_DBFS))
        self.frame_db[:n] = frame_db
