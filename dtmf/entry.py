"""Collecting a code from the keypad: conference codes, entry codes, and in-call keys.

A pure state machine driven by digits and the time (monotonic seconds) the caller passes in; ``deadline`` tells
when to call :meth:`CodeEntry.poll` if no digit comes. Pipecat-style aggregation: the code is complete on ``#``,
at ``max_digits`` when ``submit_at_max`` is set, or ends on a timeout; ``*`` starts the entry over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EntryResult(StrEnum):
    CODE = "code"  # digits typed, ended by # (or by reaching the length)
    TIMEOUT = "timeout"  # nothing typed in time, or a pause too long mid-code
    TOO_LONG = "too-long"  # more digits than any code has


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    result: EntryResult
    digits: str = field(repr=False)  # may be a secret (entry code): kept out of logs


@dataclass
class CodeEntry:
    max_digits: int
    first_digit_timeout_s: float = 10.0
    inter_digit_timeout_s: float = 5.0
    submit_at_max: bool = False
    terminator: str = "#"
    restart: str = "*"
    _digits: str = ""
    _deadline: float | None = None
    _done: EntryOutcome | None = None

    def __post_init__(self) -> None:
        if self.max_digits < 1:
            raise ValueError("max_digits must be at least 1")

    def start(self, now_s: float) -> None:
        """Begin (or begin again) waiting for the first digit, e.g. when the prompt finishes playing."""
        self._digits = ""
        self._done = None
        self._deadline = now_s + self.first_digit_timeout_s

    @property
    def deadline(self) -> float | None:
        return None if self._done else self._deadline

    @property
    def typed(self) -> int:
        """How many digits are in so far (not which: they may be secret)."""
        return len(self._digits)

    def feed(self, digit: str, now_s: float) -> EntryOutcome | None:
        """One key press; returns the outcome when the entry is complete."""
        if self._done is not None:
            return self._done
        if self._deadline is None:
            self.start(now_s)
        timed_out = self.poll(now_s)
        if timed_out is not None:
            return timed_out
        if digit == self.restart:
            self.start(now_s)
            return None
        if digit == self.terminator:
            return self._finish(EntryResult.CODE)
        if len(digit) != 1 or not digit.isdigit():
            return None  # A-D: not part of any code
        self._digits += digit
        self._deadline = now_s + self.inter_digit_timeout_s
        if len(self._digits) == self.max_digits and self.submit_at_max:
            return self._finish(EntryResult.CODE)
        if len(self._digits) > self.max_digits:
            return self._finish(EntryResult.TOO_LONG)
        return None

    def poll(self, now_s: float) -> EntryOutcome | None:
        """Call at ``deadline``: the outcome if the time ran out."""
        if self._done is not None:
            return self._done
        if self._deadline is not None and now_s >= self._deadline:
            return self._finish(EntryResult.TIMEOUT)
        return None

    def _finish(self, result: EntryResult) -> EntryOutcome:
        self._done = EntryOutcome(result, self._digits)
        return self._done


class InCallKey(StrEnum):
    MUTE = "*6"  # mute / unmute yourself
    COUNT = "*#"  # how many are in the conference
    HELP = "*0"  # list the keys
    HAND = "*9"  # raise / lower your hand


@dataclass
class InCallKeys:
    """``*`` then one key, within ``timeout_s``; anything else is ignored (a stray key must do nothing)."""

    timeout_s: float = 3.0
    _star_at: float | None = None

    def feed(self, digit: str, now_s: float) -> InCallKey | None:
        if digit == "*":
            self._star_at = now_s
            return None
        star, self._star_at = self._star_at, None
        if star is None or now_s - star > self.timeout_s:
            return None
        try:
            return InCallKey("*" + digit)
        except ValueError:
            return None
