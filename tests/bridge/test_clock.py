"""The media clock run from its timer (ticks not queued behind the loop's ready work) and the garbage collector paced
by it (collections between ticks, in the loop, never in a site thread mid-tick)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator

import pytest
import uvloop

from bridge.clock import GcPacer, MediaClock


def test_clock_run_ticks_on_its_deadlines_and_stops() -> None:
    clock = MediaClock(0.01)
    ticks: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()

        def on_tick(n: int) -> None:
            ticks.append(n)
            if len(ticks) == 10:
                stop.set()

        await asyncio.wait_for(clock.run(on_tick, stop), 5)

    uvloop.run(main())
    assert ticks == list(range(10)) or clock.stats.skipped > 0  # numbered by deadline: a skip shows as a gap
    assert clock.stats.ticks == 10


def test_clock_run_raises_what_a_tick_raised_and_ticks_no_more() -> None:
    clock = MediaClock(0.01)
    ticks: list[int] = []

    async def main() -> None:
        def on_tick(n: int) -> None:
            ticks.append(n)
            if n == 2:
                raise RuntimeError("tick failed")

        with pytest.raises(RuntimeError, match="tick failed"):
            await asyncio.wait_for(clock.run(on_tick, asyncio.Event()), 5)
        await asyncio.sleep(0.05)

    uvloop.run(main())
    assert ticks == [0, 1, 2]


def test_clock_run_tick_is_not_queued_behind_work_made_ready_after_its_deadline() -> None:
    """A request handled while the tick falls due makes more work ready (the next request's parse, a page's
    render): the tick runs before that work, not after it — a task woken by a sleep would run after it."""
    order: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        clock = MediaClock(0.02)

        def on_tick(n: int) -> None:
            order.append(f"tick {n}")
            if n == 1:
                stop.set()

        def handler() -> None:  # runs across the deadline of tick 1, then queues 20 more handlers
            until = time.monotonic() + 0.03
            while time.monotonic() < until:
                pass
            for k in range(20):
                loop.call_soon(order.append, f"work {k}")

        running = asyncio.ensure_future(clock.run(on_tick, stop))
        await asyncio.sleep(0.005)  # tick 0 has run
        loop.call_soon(handler)
        await asyncio.wait_for(running, 5)

    uvloop.run(main())
    assert order[0] == "tick 0"
    assert order.index("tick 1") < order.index("work 0"), order


@pytest.fixture
def gc_restored() -> Iterator[None]:
    enabled, thresholds = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    if enabled:
        gc.enable()
    else:
        gc.disable()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_gc_pacer_turns_automatic_collection_off_and_collects_after_ticks(gc_restored: None) -> None:
    gc.set_threshold(100, 2, 2)
    now = [0.0]
    pacer = GcPacer(full_every_s=30.0, time=lambda: now[0])
    gc.enable()
    pacer.start()
    assert not gc.isenabled()
    collected: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        gc.collect()
        collected.clear()
        for _ in range(2_000):  # garbage cycles: nothing collects them while automatic collection is off
            Cycle()
        assert collected == []
        generations = [pacer.after_tick() for _ in range(20)]
        for _ in range(20):
            for _ in range(300):
                Cycle()
            generations.append(pacer.after_tick())
        assert 0 in generations
        assert 1 in generations
        assert 2 not in generations, "a full collection before full_every_s"
        assert collected == [g for g in generations if g is not None]
        now[0] = 31.0
        full = []
        for _ in range(40):
            for _ in range(300):
                Cycle()
            full.append(pacer.after_tick())
        assert full.count(2) == 1, "one full collection once full_every_s has passed, then not again so soon"
    finally:
        gc.callbacks.remove(watch)
        pacer.stop()
    assert gc.isenabled()
    assert pacer.after_tick() is None  # stopped: it collects nothing


def test_gc_pacer_leaves_collection_off_if_it_was_off(gc_restored: None) -> None:
    gc.disable()
    pacer = GcPacer()
    pacer.start()
    pacer.stop()
    assert not gc.isenabled()


def test_engine_run_with_a_gc_pacer_collects_between_ticks(gc_restored: None) -> None:
    from bridge import Engine

    engine = Engine()
    pacer = GcPacer()
    gc.enable()
    seen: list[bool] = []

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(engine.run(stop, gc_pacer=pacer))
        for _ in range(5):
            await asyncio.sleep(0.02)
            seen.append(gc.isenabled())
            for _ in range(5_000):
                Cycle()
        stop.set()
        await asyncio.wait_for(task, 5)

    before = gc.get_stats()[0]["collections"]
    uvloop.run(main())
    assert seen == [False] * 5  # paced while the clock ran
    assert gc.isenabled()  # given back when it stopped
    assert gc.get_stats()[0]["collections"] > before
