"""A phone's audio as the room hears it: an adaptive jitter buffer on the RTP timeline, with loss concealment.

Samples are placed in a ring by their RTP timestamp (whatever the packets' duration: 10, 20 or 30 ms), so
reordering and duplicates need nothing special: a packet lands where it belongs, twice the same is written twice.
The media clock takes one 20 ms frame per tick from the play point, which runs ``delay`` behind the newest sample
heard. The delay adapts between MIN_DELAY and MAX_DELAY (20–80 ms): a packet that comes too late to be played grows
it by a frame at once (one concealed frame played in its place); when every packet of two seconds came a frame or
more before its time, the delay gives a frame back (one skipped, at a quiet frame when there is one).

A missing frame is concealed: the last frame heard again, 6 dB quieter each time, for up to three frames (60 ms),
then silence — or comfort noise at the level the caller's side announced (RFC 3389) while it sends none. A new
SSRC, or a timestamp jump beyond the ring, starts the timeline again. Timestamps are unwrapped from 32 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_DELAY = 1  # frames
MAX_DELAY = 4
SHRINK_AFTER_TICKS = 100  # two seconds holding a frame more than needed: one goes
CONCEAL_FRAMES = 3


@dataclass
class JitterStats:
    packets: int = 0
    late: int = 0  # came after their time was played
    duplicates: int = 0
    concealed: int = 0  # frames made up for lost or late ones
    resets: int = 0  # the timeline started again (new SSRC, a jump)
    grown: int = 0
    shrunk: int = 0


class JitterBuffer:
    def __init__(
        self, rate_hz: int = 8000, frame_ms: int = 20, ring_s: float = 2.0, clock_hz: int | None = None
    ) -> None:
        self.frame = rate_hz * frame_ms // 1000
        self._scale = rate_hz // (clock_hz or rate_hz)  # samples per RTP timestamp unit: 2 for G.722, else 1
        self.size = int(rate_hz * ring_s) // self.frame * self.frame
        self.ring = np.zeros(self.size, dtype=np.int16)
        self.filled = np.zeros(self.size, dtype=bool)
        self.stats = JitterStats()
        self.delay = MIN_DELAY  # frames between the newest sample heard and the play point, aimed at
        self._ssrc: int | None = None
        self._last_ts32 = 0
        self._ts_high = 0  # the unwrapped timestamp's upper bits
        self._play = 0  # the unwrapped timestamp of the next sample to play (once a packet came: _ssrc)
        self._origin = 0  # the timestamp at the ring's first sample (the play point advances by whole frames)
        self._newest = 0  # one past the newest sample heard
        self._last: npt.NDArray[np.int16] | None = None  # the last frame played from what was heard
        self._concealing = 0
        self._ticks = 0  # since the delay was last looked at
        self._min_margin = self.size  # the least any packet came before its time, since then (samples)
        self._noise_level = 0.0  # comfort noise's amplitude (RMS), while the caller's side sends none
        self._rng = np.random.default_rng()

    # -- arriving packets ------------------------------------------------------------------------------------------

    def _unwrap(self, ts32: int) -> int:
        if self._ssrc is None:
            self._last_ts32 = ts32
            return ts32
        delta = (ts32 - self._last_ts32) & 0xFFFFFFFF
        if delta >= 0x80000000:  # earlier than the last (reordered), possibly across the wrap
            delta -= 0x100000000
        value = (self._ts_high | self._last_ts32) + delta
        if delta > 0:
            self._last_ts32 = ts32
            self._ts_high = value & ~0xFFFFFFFF
        return value

    def put(self, ssrc: int, timestamp: int, samples: npt.NDArray[np.int16]) -> None:
        """A packet's decoded samples, at its RTP timestamp."""
        if ssrc != self._ssrc:
            if self._ssrc is not None:
                self.stats.resets += 1
            self._restart(ssrc, timestamp)
        ts = self._unwrap(timestamp) * self._scale
        n = len(samples)
        if ts + n - self._play > self.size - self.frame or ts + n < self._play - self.size:  # a jump: start again
            self.stats.resets += 1
            self._restart(ssrc, timestamp)
            ts = timestamp * self._scale
        self.stats.packets += 1
        if ts + n <= self._play:  # too late to be played: the delay grows by a frame
            self.stats.late += 1
            if self.delay < MAX_DELAY:
                self.delay += 1
                self.stats.grown += 1
                self._hold = True
            return
        if ts < self._play:  # its beginning is past: the rest
            samples, ts = samples[self._play - ts :], self._play
            n = len(samples)
        spans = self._spans(ts, n)
        # A duplicate finds every sample of its span filled with itself; the first sample tells most packets apart
        # at the cost of one scalar look (small numpy calls were half of this method's time).
        if (
            self.filled[spans[0][0]]
            and all(self.filled[a:b].all() for a, b, _ in spans)
            and all(np.array_equal(self.ring[a:b], samples[o : o + b - a]) for a, b, o in spans)
        ):
            self.stats.duplicates += 1
            return
        for a, b, o in spans:
            self.ring[a:b] = samples[o : o + b - a]
            self.filled[a:b] = True
        self._newest = max(self._newest, ts + n)
        self._min_margin = min(self._min_margin, ts + n - self._play)  # how early it came for its time
        self._noise_level = 0.0

    def _spans(self, ts: int, n: int) -> list[tuple[int, int, int]]:
        """Where ``n`` samples from ``ts`` sit in the ring: one or two (start, end, offset in the samples)."""
        a = (ts - self._origin) % self.size
        if a + n <= self.size:
            return [(a, a + n, 0)]
        return [(a, self.size, 0), (0, a + n - self.size, self.size - a)]

    def comfort_noise(self, level_dbov: int) -> None:
        """RFC 3389: the caller's side goes quiet and says how loud its background is (0–127, −dBov)."""
        self._noise_level = 32767 * 10 ** (-min(max(level_dbov, 0), 127) / 20) / np.sqrt(2)

    def _restart(self, ssrc: int, timestamp: int) -> None:
        self._ssrc = ssrc
        self._last_ts32 = timestamp
        self._ts_high = 0
        self.filled[:] = False
        self._play = self._origin = timestamp * self._scale - self.delay * self.frame
        self._newest = timestamp * self._scale
        self._ticks = 0
        self._min_margin = self.size
        self._hold = False

    _hold = False  # play a concealed frame instead of advancing (the delay just grew)

    # -- the media clock's frames ----------------------------------------------------------------------------------

    def get(self) -> npt.NDArray[np.int16] | None:
        """The next 20 ms to play, or None when nothing has been heard for a while (the room hears silence)."""
        if self._ssrc is None:
            return None
        if self._hold:  # the delay grew: this tick is made up, the play point stays
            self._hold = False
            return self._conceal()
        a = (self._play - self._origin) % self.size  # a frame never straddles the ring's end: whole frames in it
        b = a + self.frame
        self._play += self.frame
        have = self.filled[a:b]
        if not have.any():
            return self._conceal()
        frame = self.ring[a:b].copy()
        if not have.all():  # part of the frame lost: that part from the last frame heard, quieter
            frame[~have] = (self._last[~have] // 2) if self._last is not None else 0
        self.filled[a:b] = False
        self._last = frame
        self._concealing = 0
        self._adapt()
        return frame

    def _conceal(self) -> npt.NDArray[np.int16] | None:
        if self._noise_level > 0:
            noise = self._rng.normal(0.0, self._noise_level, self.frame)
            return np.clip(noise, -32768, 32767).astype(np.int16)
        if self._last is None or self._concealing >= CONCEAL_FRAMES:
            return None
        self._concealing += 1
        self.stats.concealed += 1
        return (self._last.astype(np.int32) >> self._concealing).astype(np.int16)

    def _adapt(self) -> None:
        """Every two seconds: when every packet of them came at least a frame before it was needed, the delay has a
        frame to spare, and gives it back (a frame skipped; at a quiet one when this one was, else at the end of
        the next two seconds)."""
        self._ticks += 1
        if self._ticks < SHRINK_AFTER_TICKS:
            return
        spare = self.delay > MIN_DELAY and self._min_margin >= 2 * self.frame
        quiet = self._last is not None and int(np.abs(self._last).max()) < 300
        if spare and (quiet or self._ticks >= 2 * SHRINK_AFTER_TICKS):
            a = (self._play - self._origin) % self.size
            self.filled[a : a + self.frame] = False
            self._play += self.frame
            self.delay -= 1
            self.stats.shrunk += 1
        elif spare:
            return  # wait for a quiet frame (at most two seconds more)
        self._ticks = 0
        self._min_margin = self.size
