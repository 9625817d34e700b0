from __future__ import annotations

import logging

import pytest

from bridge.guard import FailureGuard


def test_guard_blocks_a_caller_after_the_limit_within_the_window() -> None:
    guard = FailureGuard(limit=10, window_s=3600, alarm_per_min=1000)
    keys = ["caller:+33612345678", "source:192.0.2.7"]
    for k in range(9):
        guard.record(keys, now=100.0 * k)
        assert not guard.blocked(keys, now=100.0 * k)
    guard.record(keys, now=950.0)
    assert guard.blocked(keys, now=951.0)
    assert guard.blocked(["caller:+33699999999", "source:192.0.2.7"], now=951.0)  # same source, other number
    assert not guard.blocked(["caller:+33699999999", "source:198.51.100.1"], now=951.0)
    assert guard.blocked(keys, now=3599.0)  # the first failure (t=0) ages out at 3600
    assert not guard.blocked(keys, now=3600.0)


def test_guard_forgets_old_keys() -> None:
    guard = FailureGuard(limit=3, window_s=60, alarm_per_min=1000)
    for n in range(50):
        guard.record([f"caller:{n}"], now=float(n))
    assert len(guard) == 50
    guard.forget_old(now=200.0)
    assert len(guard) == 0


def test_guard_global_alarm_logged_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    guard = FailureGuard(limit=1000, window_s=3600, alarm_per_min=30)
    caplog.set_level(logging.WARNING)
    fired = [guard.record([f"caller:{n}"], now=n * 0.5) for n in range(161)]  # 2 per second, 80 s, many numbers
    assert not any(fired[:30])
    assert all(fired[30:])  # the 31st failure within a minute
    alarms = [r for r in caplog.records if "dial-in alarm" in r.getMessage()]
    assert len(alarms) == 2  # from 15.5 s to 80 s: logged at 15.5 s and again a minute later
    assert not guard.record(["caller:x"], now=300.0)  # calm again


def test_guard_log_never_holds_the_number(caplog: pytest.LogCaptureFixture) -> None:
    guard = FailureGuard(limit=2, window_s=60, alarm_per_min=1000)
    caplog.set_level(logging.WARNING)
    for t in range(2):
        guard.record(["caller:+33612345678"], now=float(t), shown="+33 6 •• •• •• 78")
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "+33 6 •• •• •• 78" in text
    assert "612345678" not in text
