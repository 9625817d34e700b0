"""Voice activity per leg: energy against a noise floor from minimum statistics, with onset detection and hangover.

Vectorised over every leg of every room: one call updates all legs' state from a ``(legs, samples)`` frame block.

- **Noise floor**: the lowest frame level of the last ~1.6 s (minimum statistics, R. Martin, IEEE Trans. SAP 2001):
  speech always has quieter gaps within that time, a steady noise (a fan, a car, a line hum) never does, so the floor
  follows the noise within 1.6 s, up or down, whatever level a call starts with.
- **Onset**: a frame turns active when any of its 5 ms sub-blocks rises ``onset_db`` above the floor, so a syllable
  starting late in a frame is caught in that frame, not the next.
- **Sustain**: an active leg stays active while the whole frame stays ``sustain_db`` above the floor (a lower bar:
  hysteresis), then for ``hangover_ms`` more, so soft word endings and short pauses are not cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mixer.frame import FULL_SCALE


@dataclass(frozen=True, slots=True)
class VadConfig:
    onset_db: float = 6.0
    sustain_db: float = 5.0
    min_level_dbfs: float = -55.0  # quieter than this is never speech (a distant murmur, line noise)
    hangover_ms: int = 300
    floor_window_ms: int = 1600
    floor_blocks: int = 8
    # For a leg's first 200 ms (one floor block) its quietest frame may be speech: the floor is capped here.
    initial_floor_dbfs: float = -60.0
    sub_blocks: int = 4
    # Energy is measured on every 4th sample: at 48 kHz that is still 60 samples per 5 ms block, and the energy of
    # a sub-sampled signal equals the full one on average (aliasing folds energy, it does not remove it).
    decimation: int = 4
    level_attack: float = 0.6  # smoothing of the speech level used for ranking talkers
    level_release: float = 0.1


SILENCE_DBFS = -120.0
_UNSEEN_DBFS = 100.0  # a floor block with no frame yet: never the minimum


class VoiceActivity:
    """State for ``capacity`` legs, indexed by slot; the owner moves slots with :meth:`move`."""

    def __init__(self, config: VadConfig, frame_ms: int, capacity: int) -> None:
        self.config = config
        # Counted down from the last speech frame: that frame plus hangover_ms of frames after it.
        self._hangover_frames = max(1, round(config.hangover_ms / frame_ms)) + 1
        self._block_frames = max(1, round(config.floor_window_ms / frame_ms / config.floor_blocks))
        self._learning_frames = self._block_frames
        self._tick = 0
        self._block_min = np.empty((0, config.floor_blocks), dtype=np.float32)
        self._running_min = np.empty(0, dtype=np.float32)
        self._frames_seen = np.empty(0, dtype=np.int32)
        self.floor_db = np.empty(0, dtype=np.float32)
        self.hang = np.empty(0, dtype=np.int32)
        self.active = np.empty(0, dtype=bool)
        self.level_db = np.empty(0, dtype=np.float32)  # smoothed speech level, SILENCE_DBFS when inactive
        self.frame_db = np.empty(0, dtype=np.float32)  # this frame's RMS level
        self.grow(capacity)

    def _arrays(self) -> list[npt.NDArray[np.generic]]:
        return [
            self._block_min,
            self._running_min,
            self._frames_seen,
            self.floor_db,
            self.hang,
            self.active,
            self.level_db,
            self.frame_db,
        ]

    def grow(self, capacity: int) -> None:
        extra = capacity - len(self.active)
        if extra <= 0:
            return
        self._block_min = np.concatenate(
            [self._block_min, np.full((extra, self.config.floor_blocks), _UNSEEN_DBFS, np.float32)]
        )
        self._running_min = np.concatenate([self._running_min, np.full(extra, _UNSEEN_DBFS, np.float32)])
        self._frames_seen = np.concatenate([self._frames_seen, np.zeros(extra, np.int32)])
        self.floor_db = np.concatenate([self.floor_db, np.full(extra, SILENCE_DBFS, np.float32)])
        self.hang = np.concatenate([self.hang, np.zeros(extra, np.int32)])
        self.active = np.concatenate([self.active, np.zeros(extra, bool)])
        self.level_db = np.concatenate([self.level_db, np.full(extra, SILENCE_DBFS, np.float32)])
        self.frame_db = np.concatenate([self.frame_db, np.full(extra, SILENCE_DBFS, np.float32)])

    def reset(self, slot: int) -> None:
        self._block_min[slot] = _UNSEEN_DBFS
        self._running_min[slot] = _UNSEEN_DBFS
        self._frames_seen[slot] = 0
        self.floor_db[slot] = SILENCE_DBFS
        self.hang[slot] = 0
        self.active[slot] = False
        self.level_db[slot] = SILENCE_DBFS
        self.frame_db[slot] = SILENCE_DBFS

    def move(self, src: int, dst: int) -> None:
        for array in self._arrays():
            array[dst] = array[src]

    def update(self, frames: npt.NDArray[np.int16]) -> None:
        """Advance the first ``len(frames)`` legs by one frame each (int16)."""
        cfg = self.config
        n = frames.shape[0]
        blocks = cfg.sub_blocks
        sampled = frames[:, :: cfg.decimation].astype(np.float32)
        samples = sampled.shape[1] - sampled.shape[1] % blocks
        split = sampled[:, :samples].reshape(n, blocks, samples // blocks)
        energy = np.einsum("lbs,lbs->lb", split, split)
        energy *= np.float32(blocks / (samples * FULL_SCALE * FULL_SCALE))
        np.maximum(energy, np.float32(1e-12), out=energy)
        block_db = 10.0 * np.log10(energy)
        frame_db = 10.0 * np.log10(energy.mean(axis=1))
        peak_db = block_db.max(axis=1)

        # Minimum statistics: the floor is the quietest frame of the current and the last few blocks.
        running = self._running_min[:n]
        np.minimum(running, frame_db, out=running)
        floor = np.minimum(self._block_min[:n].min(axis=1), running)
        seen = self._frames_seen[:n]
        learning = seen < self._learning_frames
        if learning.any():
            floor = np.where(learning, np.minimum(floor, np.float32(cfg.initial_floor_dbfs)), floor)
            seen += 1
        self.floor_db[:n] = floor
        self._tick += 1
        if self._tick % self._block_frames == 0:
            column = (self._tick // self._block_frames) % cfg.floor_blocks
            self._block_min[:n, column] = running
            running[:] = _UNSEEN_DBFS

        audible = frame_db > cfg.min_level_dbfs
        onset = (peak_db > floor + cfg.onset_db) & (peak_db > cfg.min_level_dbfs)
        sustain = self.active[:n] & (frame_db > floor + cfg.sustain_db) & audible
        hang = self.hang[:n]
        np.copyto(hang, np.where(onset | sustain, self._hangover_frames, np.maximum(hang - 1, 0)))
        np.greater(hang, 0, out=self.active[:n])

        level = self.level_db[:n]
        coeff = np.where(frame_db > level, np.float32(cfg.level_attack), np.float32(cfg.level_release))
        smoothed = np.where(level <= SILENCE_DBFS, frame_db, level + (frame_db - level) * coeff)
        np.copyto(level, np.where(self.active[:n], smoothed, SILENCE_DBFS))
        self.frame_db[:n] = frame_db
