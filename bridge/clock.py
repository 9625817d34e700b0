"""The media clock: one drift-free 20 ms tick for every room (deadline = start + n × period).

A tick is never delayed by the work of the one before beyond its own lateness, and errors never accumulate the way
repeated ``sleep(0.02)`` calls do. When the loop falls more than a whole period behind (a long pause), the missed
ticks are skipped and counted, not played in a burst: a burst of frames would only fill the legs' jitter buffers.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time as _time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass


@dataclass
class ClockStats:
    ticks: int = 0
    late: int = 0  # ticks that began more than a tolerance after their deadline
    skipped: int = 0  # deadlines passed over entirely after a long stall


class MediaClock:
    def __init__(
        self,
        period_s: float = 0.02,
        *,
        late_tolerance_s: float = 0.005,
        time: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.period_s = period_s
        self.late_tolerance_s = late_tolerance_s
        self._time = time
        self._sleep = sleep
        self.stats = ClockStats()

    def _now(self) -> float:
        return self._time() if self._time is not None else asyncio.get_running_loop().time()

    async def ticks(self) -> AsyncIterator[int]:
        """Yields tick numbers at start + n × period; the caller's work runs between yields."""
        start = self._now()
        n = 0
        while True:
            deadline = start + n * self.period_s
            now = self._now()
            if now < deadline:
                await self._sleep(deadline - now)
                now = self._now()
            lateness = now - deadline
            if lateness > self.period_s:
                missed = math.floor(lateness / self.period_s)
                self.stats.skipped += missed
                n += missed
                lateness -= missed * self.period_s
            if lateness > self.late_tolerance_s:
                self.stats.late += 1
            self.stats.ticks += 1
            yield n
            n += 1


@dataclass
class GcStats:
    collections: list[int]  # per generation (0, 1, 2)
    long: int = 0  # collections that held the interpreter (so the media clock) more than LONG_GC_S
    longest_ms: float = 0.0


LONG_GC_S = 0.005


class GcWatch:
    """Times the interpreter's garbage collections, which stop every thread and so the media clock: a full
    collection walks every object the process holds (the site's, the database's, the rooms'), tens of ms."""

    def __init__(self) -> None:
        self.stats = GcStats(collections=[0, 0, 0])
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = _time.perf_counter()
            return
        took = _time.perf_counter() - self._began
        self.stats.collections[info["generation"]] += 1
        if took > LONG_GC_S:
            self.stats.long += 1
        self.stats.longest_ms = max(self.stats.longest_ms, round(took * 1000, 1))

    def start(self) -> None:
        if self not in gc.callbacks:
            gc.callbacks.append(self)

    def stop(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)
