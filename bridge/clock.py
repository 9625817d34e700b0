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

    def _begin(self, n: int, deadline_of: Callable[[int], float]) -> int:
        """Accounts for a tick about to begin now, ``n`` being its number; the number it runs as (after skips)."""
        now = self._now()
        lateness = now - deadline_of(n)
        if lateness > self.period_s:
            missed = math.floor(lateness / self.period_s)
            self.stats.skipped += missed
            n += missed
            lateness -= missed * self.period_s
        if lateness > self.late_tolerance_s:
            self.stats.late += 1
        self.stats.ticks += 1
        return n

    async def ticks(self) -> AsyncIterator[int]:
        """Yields tick numbers at start + n × period; the caller's work runs between yields."""
        start = self._now()

        def deadline_of(k: int) -> float:
            return start + k * self.period_s

        n = 0
        while True:
            now = self._now()
            if now < deadline_of(n):
                await self._sleep(deadline_of(n) - now)
            n = self._begin(n, deadline_of)
            yield n
            n += 1

    async def run(self, on_tick: Callable[[int], None], stop: asyncio.Event) -> None:
        """Calls ``on_tick(n)`` at start + n × period until ``stop`` is set, from the loop's timer itself.

        A task woken by ``asyncio.sleep`` is queued behind every callback already ready (the site's requests, the
        packets that came in), and runs a loop iteration later; a timer's own callback runs when the timer is due,
        behind at most the callbacks of the iteration under way (bench hostile: late ticks under the site's load).
        An exception from ``on_tick`` ends the run and is raised here."""
        loop = asyncio.get_running_loop()
        start = self._now()
        ended: asyncio.Future[bool] = loop.create_future()
        handle: asyncio.TimerHandle | None = None
        n = 0

        def deadline_of(k: int) -> float:
            return start + k * self.period_s

        def fire() -> None:
            nonlocal n, handle
            if stop.is_set():
                if not ended.done():
                    ended.set_result(True)
                return
            n = self._begin(n, deadline_of)
            try:
                on_tick(n)
            except BaseException as exc:  # handed to run()'s caller, never lost in the loop's handler
                if not ended.done():
                    ended.set_exception(exc)
                return
            n += 1
            handle = loop.call_at(self._loop_time(loop, deadline_of(n)), fire)

        handle = loop.call_at(self._loop_time(loop, deadline_of(0)), fire)
        stopped: asyncio.Future[bool] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([ended, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            handle.cancel()
            stopped.cancel()
        if ended.done():
            ended.result()

    def _loop_time(self, loop: asyncio.AbstractEventLoop, at: float) -> float:
        """``at`` on this clock's time, as the loop's time (the same unless the clock was given its own time)."""
        return at if self._time is None else loop.time() + (at - self._time())


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


class GcPacer:
    """Runs the garbage collector on the media clock's time: right after a tick, never in the middle of one.

    Left to itself the collector runs in whichever thread's allocation crosses a threshold — often a site worker
    parsing a large body or rendering a page — and holds the interpreter for the whole collection; the loop waits
    for it, and for longer when that thread is preempted mid-collection (bench hostile: collections of 25 ms, late
    ticks). Paced, automatic collection is off and the loop runs the same young collections CPython would, by the
    same thresholds, in the time left after a tick's work; a full collection (the oldest generation) at most once
    every ``full_every_s``, which also bounds the cost of walking what survived. Garbage waits at most one tick
    longer than it did; memory stays bounded as long as the clock ticks."""

    def __init__(self, *, full_every_s: float = 30.0, time: Callable[[], float] = _time.monotonic) -> None:
        if full_every_s <= 0:
            raise ValueError("full_every_s must be positive")
        self.full_every_s = full_every_s
        self._time = time
        self._thresholds = gc.get_threshold()
        self._last_full = time()
        self._was_enabled = gc.isenabled()
        self.running = False

    def start(self) -> None:
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._last_full = self._time()
        gc.disable()
        self.running = True

    def stop(self) -> None:
        if self.running and self._was_enabled:
            gc.enable()
        self.running = False

    def after_tick(self) -> int | None:
        """Collects what CPython would have by now; the generation collected, or None."""
        if not self.running:
            return None
        young, middle, old = gc.get_count()
        t0, t1, t2 = self._thresholds
        if t0 == 0 or young <= t0:
            return None
        generation = 0
        if middle >= t1:
            generation = 1
            now = self._time()
            if old >= t2 and now - self._last_full >= self.full_every_s:
                generation = 2
                self._last_full = now
        gc.collect(generation)
        return generation
