"""Failure counters in the database: free tries, then slowed ones, one at a time; shared and kept across restarts."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text

from config import Settings
from rooms import Rooms
from rooms.db import session_factory
from rooms.models import FailedAttempt
from rooms.retention import Retention
from rooms.throttle import Key, Policy, Scope, Throttle
from tests.conftest import FakeClock

POLICY = Policy(free=3, initial_s=5, max_s=40, window_s=3600)
YEAR_S = 365 * 86_400


def throttle(engine: Engine, clock: FakeClock) -> Throttle:
    return Throttle(session_factory(engine), Scope.CODE, "test secret", clock)


def test_throttle_free_tries_then_doubling_delays_up_to_the_cap(engine: Engine, clock: FakeClock) -> None:
    t, key = throttle(engine, clock), Key("caller:+33612345678", POLICY)
    for _ in range(3):
        assert t.wait_s([key]) == 0
        assert t.claim([key]) is not None  # a try counts as failed until it succeeds
    waits = []
    for _ in range(5):
        waits.append(t.wait_s([key]))
        assert t.claim([key]) is None, "a slowed key refuses a try before its time"
        clock.advance(timedelta(seconds=waits[-1]))
        assert t.claim([key]) is not None
    assert waits == [5, 10, 20, 40, 40]
    clock.advance(timedelta(hours=1, seconds=1))
    assert t.wait_s([key]) == 0, "failures age out of the window"


def test_throttle_a_right_try_is_taken_back(engine: Engine, clock: FakeClock) -> None:
    t, key = throttle(engine, clock), Key("conference:x", POLICY)
    for _ in range(10):
        claim = t.claim([key])
        assert claim is not None
        t.succeeded(claim)
    assert t.failures(key) == 0, "thirty callers with the right code are never slowed"


def test_throttle_parallel_tries_cannot_pass_the_free_allowance_at_once(engine: Engine, clock: FakeClock) -> None:
    t, key = throttle(engine, clock), Key("conference:x", POLICY)
    claims = [t.claim([key, Key(f"caller:+336000000{n:02}", POLICY)]) for n in range(20)]
    assert sum(c is not None for c in claims) == 3, "tries not yet judged count: no burst past the allowance"


def test_throttle_keys_are_hashed_and_survive_a_restart(settings: Settings, engine: Engine, clock: FakeClock) -> None:
    t, key = throttle(engine, clock), Key("caller:+33612345678", POLICY)
    t.record_failure([key] * 3)
    with engine.connect() as db:
        stored = db.execute(text("select key from failed_attempts")).scalars().all()
    assert len(stored) == 3
    assert all("6123" not in k and len(k) == 64 for k in stored)
    again = Throttle(session_factory(engine), Scope.CODE, "test secret", clock)  # another process, another node
    assert again.failures(key) == 3
    assert again.wait_s([key]) == 5


def test_throttle_old_failures_go_with_the_retention_purge(
    settings: Settings, engine: Engine, clock: FakeClock
) -> None:
    t, key = throttle(engine, clock), Key("caller:+33612345678", POLICY)
    t.record_failure([key] * 4)
    clock.advance(timedelta(days=2))
    assert Retention(session_factory(engine), settings, clock).purge()["failed_attempts"] == 4
    with session_factory(engine)() as s:
        assert s.scalars(select(FailedAttempt)).all() == []


def test_guessing_a_six_digit_entry_code_takes_more_than_a_year(
    settings: Settings, rooms: Rooms, clock: FakeClock
) -> None:
    """The fastest attacker the limits allow: a fresh number (and source) for every try, each try started the
    moment the conference's key allows it. Run through the real store for six hours of virtual time, it gets no
    more tries than the policy's bound; that bound over a year is below the million 6-digit codes."""
    limits = rooms.code_limits
    room = "2f1e6c1a-5b8e-4c55-9d6a-0c9a7f3e1b20"
    policy = limits.conference
    start, tries, fresh = clock.now, 0, 0
    while clock.now - start < timedelta(hours=6):
        fresh += 1
        keys = [*limits.caller_keys(f"+3361{fresh:07}", f"198.51.{fresh // 250}.{fresh % 250}"),
                limits.conference_key(room)]  # fmt: skip
        wait = limits.throttle.wait_s(keys)
        clock.advance(timedelta(seconds=max(wait, 0.001)))
        if limits.throttle.claim(keys) is not None:
            tries += 1  # a wrong guess: its provisional failure stays
    hours = 6
    per_window = policy.free + policy.window_s / policy.max_s
    assert tries <= hours * 3600 / policy.window_s * per_window + 1
    per_year = YEAR_S / policy.window_s * policy.free + policy.tries_per_year()
    assert per_year < 1_000_000, f"{per_year:.0f} tries a year: a 6-digit code falls within a year"
    assert tries > hours * 3600 / policy.max_s * 0.9, "the attacker was slowed more than the policy says: test bug"


def test_wrong_codes_from_everywhere_raise_the_alarm_once_a_minute(
    settings: Settings, rooms: Rooms, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    limits = rooms.code_limits
    for n in range(settings.limits.global_failures_alarm_per_min + 5):
        limits.failed(limits.caller_keys(f"+3361{n:07}", None))
        clock.advance(timedelta(seconds=0.5))
    alarms = [r for r in caplog.records if "code alarm" in r.getMessage()]
    assert len(alarms) == 1, "once a minute while it lasts, not once a failure"
    assert "+336" not in caplog.text, "no number in the log"


def test_wrong_entry_codes_arriving_together_raise_the_conference_alarm_once(
    settings: Settings, rooms: Rooms, clock: FakeClock
) -> None:
    """Calls judge their codes in worker threads: past the free allowance, eight wrong codes judged at the same
    moment raise one alarm (audit trail, host's email), not one per thread that saw the threshold crossed."""
    limits, room = rooms.code_limits, "b2f7c1de-0000-4000-8000-000000000001"
    key = limits.conference_key(room)
    limits.throttle.record_failure([key] * limits.conference.free)
    raised: list[str] = []

    def slow_listener(conference: str) -> None:
        time.sleep(0.05)  # an email being queued: the window in which a second thread used to slip through
        raised.append(conference)

    limits.on_guessing, limits.notify_host = raised.append, slow_listener
    start = threading.Barrier(8)

    def judge() -> None:
        start.wait()
        limits.failed([key], conference_id=room)

    threads = [threading.Thread(target=judge) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert raised == [room, room], "one alarm: one audit event and one email to the host"
