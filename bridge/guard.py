"""Brute-force protection for the dial-in codes: failed code entries counted per caller and per source.

Each failure is remembered for ``window_s`` against every key it concerns (the caller's number, the address the
call came from: a gateway shared by many patients needs the higher of the two limits, so configure them apart if
needed). A key with ``limit`` failures in the window is refused at once, before any code is asked for. Across all
callers, more than ``alarm_per_min`` failures in a minute raise an alarm (logged once a minute while it lasts): a
distributed guessing attempt shows there first.

Keys are kept in memory only, masked in every log line, and forgotten when their failures age out.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class FailureGuard:
    limit: int
    window_s: float
    alarm_per_min: int
    label: str = "dial-in"  # what the log lines name: "dial-in", "sign-in"
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _recent: deque[float] = field(default_factory=deque)
    _last_alarm: float = float("-inf")

    def blocked(self, keys: list[str], now: float) -> bool:
        return any(self.count(key, now) >= self.limit for key in keys)

    def count(self, key: str, now: float) -> int:
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def record(self, keys: list[str], now: float, *, shown: str = "") -> bool:
        """Count one failure against every key; True when the global alarm fires (now, or still)."""
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)
            if self.count(key, now) == self.limit:
                log.warning("%s: %s reached %d failures in %.0f s, refused from now", self.label, shown or "a caller",
                            self.limit, self.window_s)  # fmt: skip
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()
        if len(self._recent) > self.alarm_per_min:
            if now - self._last_alarm >= 60.0:
                log.error("%s alarm: %d failures in the last minute, all sources", self.label, len(self._recent))
                self._last_alarm = now
            return True
        return False

    def forget_old(self, now: float) -> None:
        """Drop keys whose failures all aged out (call now and then so memory stays flat)."""
        for key in list(self._failures):
            self.count(key, now)

    def __len__(self) -> int:
        return len(self._failures)
