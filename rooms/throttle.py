"""Failure counters that slow guessing down instead of locking people out (codes by phone and web, sign-in).

A try is counted against every key it concerns — the caller's number, the packet's source address when the
stack tells it, the conference whose entry code is typed, an account — and **counts as failed until it succeeds**:
:meth:`Throttle.claim` writes the failure before the code is even typed, :meth:`Throttle.succeeded` takes it back.
So parallel calls cannot all try at once while a key is still within its free allowance, and a caller who hangs
up mid-try has spent the try.

Within ``free`` failures in the window a key costs nothing; past it each try must wait ``initial_s`` after the
key's last failure, doubled per further failure up to ``max_s``. At most one try at a time passes a slowed key
(its row in ``throttle_gates`` is locked while a try is claimed), on every node, since the counters live in the
database: a restart forgets nothing. The From host of a SIP request is written by the caller and is never a key.

Old failures and gates are purged with the rest of the personal data (:mod:`rooms.retention`).
Keys are stored as HMAC-SHA-256 of their text (keyed by ``security.secret_key``, or a fixed label without one):
the tables hold no phone number or address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from rooms.models import FailedAttempt, ThrottleGate

log = logging.getLogger(__name__)


class Scope(StrEnum):
    CODE = "code"  # conference and entry codes, by phone and on the join page
    SIGN_IN = "sign-in"


@dataclass(frozen=True, slots=True)
class Policy:
    """How a kind of key is slowed: ``free`` failures within ``window_s``, then ``initial_s`` doubling to ``max_s``."""

    free: int
    initial_s: float
    max_s: float
    window_s: float

    def delay_s(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return float(min(self.max_s, self.initial_s * 2.0 ** min(failures - self.free, 60)))

    def tries_per_year(self) -> float:
        """The most tries one slowed key allows in a year (the free ones aside): what guessing a code costs."""
        return 365 * 86_400 / self.max_s


@dataclass(frozen=True, slots=True)
class Key:
    text: str  # e.g. "caller:+33612345678", "conference:<uuid>": hashed before it is stored
    policy: Policy


@dataclass(frozen=True, slots=True)
class Claim:
    """A try under way: its provisional failures, taken back by :meth:`Throttle.succeeded`."""

    ids: tuple[int, ...]


class _Wait(Exception):
    """A key of the claim must still wait."""


class Throttle:
    def __init__(
        self, sessions: sessionmaker[Session], scope: Scope, secret: str, clock: Callable[[], datetime]
    ) -> None:
        self._sessions, self._scope, self._clock = sessions, scope, clock
        self._pepper = (secret or "passerelle failure counters").encode()

    def digest(self, text: str) -> str:
        return hmac.new(self._pepper, text.encode(), hashlib.sha256).hexdigest()

    def now(self) -> datetime:
        """The clock the counters are judged against."""
        return self._clock()

    def failures(self, key: Key) -> int:
        with self._sessions.begin() as s:
            return self._state(s, key, self._clock())[0]

    def wait_s(self, keys: Sequence[Key]) -> float:
        """Seconds before a try against all ``keys`` may start (0: now)."""
        now = self._clock()
        with self._sessions.begin() as s:
            return max((self._wait(s, key, now) for key in keys), default=0.0)

    def claim(self, keys: Sequence[Key]) -> Claim | None:
        """Start a try now: None if one of the keys must still wait (another node or call took the turn)."""
        for _ in range(3):  # a gate row made by a concurrent first claim: read it and try again
            try:
                return self._claim(keys)
            except IntegrityError:
                continue
            except _Wait:
                return None
        return None

    def _claim(self, keys: Sequence[Key]) -> Claim | None:
        now = self._clock()
        with self._sessions.begin() as s:
            for key in sorted(keys, key=lambda k: k.text):  # one order everywhere: no deadlock between claims
                digest = self.digest(key.text)
                # The gate row is this key's lock: a concurrent claim waits here until this one commits.
                touched = s.execute(
                    update(ThrottleGate)
                    .where(ThrottleGate.scope == self._scope.value, ThrottleGate.key == digest)
                    .values(next_try_at=ThrottleGate.next_try_at)
                )
                if touched.rowcount == 0:  # type: ignore[attr-defined]
                    s.add(ThrottleGate(scope=self._scope.value, key=digest, next_try_at=now))
                    s.flush()
                if self._wait(s, key, now) > 0:
                    raise _Wait  # rolls the transaction back
            rows = [FailedAttempt(scope=self._scope.value, key=self.digest(k.text), at=now) for k in keys]
            s.add_all(rows)
            s.flush()
            for key in keys:
                count, _ = self._state(s, key, now)
                s.execute(
                    update(ThrottleGate)
                    .where(ThrottleGate.scope == self._scope.value, ThrottleGate.key == self.digest(key.text))
                    .values(next_try_at=now + timedelta(seconds=key.policy.delay_s(count)))
                )
            return Claim(tuple(r.id for r in rows))

    def succeeded(self, claim: Claim) -> None:
        """The try was right: its provisional failures are taken back."""
        with self._sessions.begin() as s:
            s.execute(delete(FailedAttempt).where(FailedAttempt.id.in_(claim.ids)))

    def record_failure(self, keys: Sequence[Key]) -> None:
        """A failure outside a claim (e.g. a code typed before the conference, hence its key, was known)."""
        now = self._clock()
        with self._sessions.begin() as s:
            s.add_all(FailedAttempt(scope=self._scope.value, key=self.digest(k.text), at=now) for k in keys)

    def _state(self, s: Session, key: Key, now: datetime) -> tuple[int, datetime | None]:
        since = now - timedelta(seconds=key.policy.window_s)
        count, last = s.execute(
            select(func.count(FailedAttempt.id), func.max(FailedAttempt.at)).where(
                FailedAttempt.scope == self._scope.value,
                FailedAttempt.key == self.digest(key.text),
                FailedAttempt.at > since,
            )
        ).one()
        return int(count), last

    def _wait(self, s: Session, key: Key, now: datetime) -> float:
        count, last = self._state(s, key, now)
        delay = key.policy.delay_s(count)
        if delay <= 0 or last is None:
            return 0.0
        if last.tzinfo is None:  # pragma: no cover - the column type makes it aware on both backends
            last = last.replace(tzinfo=UTC)
        return max(0.0, (last + timedelta(seconds=delay) - now).total_seconds())


class CodeLimits:
    """The code limits as the call flow and the join page apply them: which keys a try is counted against, the
    node's alarm when wrong codes pour in from everywhere, and the alarm for one conference (log, audit trail,
    ``on_guessing`` — which tells its host)."""

    def __init__(
        self,
        throttle: Throttle,
        *,
        free_per_caller: int,
        free_per_conference: int,
        initial_s: float,
        max_s: float,
        window_s: float,
        alarm_per_min: int,
        on_guessing: Callable[[str], None] | None = None,
    ) -> None:
        self.throttle = throttle
        self.caller = Policy(free_per_caller, initial_s, max_s, window_s)
        self.conference = Policy(free_per_conference, initial_s, max_s, window_s)
        self._alarm_per_min = alarm_per_min
        self._recent: list[datetime] = []
        self._last_alarm: datetime | None = None
        self._alarmed: dict[str, datetime] = {}  # conference → when its alarm was last raised (once a window)
        self._alarm_lock = threading.Lock()  # failed() runs in worker threads: check-and-raise is one step
        self.on_guessing = on_guessing  # the audit trail
        self.notify_host: Callable[[str], None] | None = None  # the site sets it: an email to the conference's host

    @classmethod
    def from_settings(cls, sessions: sessionmaker[Session], settings: Settings, clock: Callable[[], datetime],
                      on_guessing: Callable[[str], None] | None = None) -> CodeLimits:  # fmt: skip
        limits = settings.limits
        throttle = Throttle(sessions, Scope.CODE, settings.security.secret_key.reveal(), clock)
        return cls(throttle, free_per_caller=limits.failures_per_caller,
                   free_per_conference=limits.conference_free_failures, initial_s=limits.delay_initial_s,
                   max_s=limits.delay_max_s, window_s=limits.failures_window_s,
                   alarm_per_min=limits.global_failures_alarm_per_min, on_guessing=on_guessing)  # fmt: skip

    def caller_keys(self, number: str | None, source: str | None) -> list[Key]:
        """A phone caller's keys: the number it presents and the address its packets come from, when known (the
        From host, which the caller writes, never)."""
        keys = [Key(f"caller:{number}", self.caller)] if number else []
        return keys + ([Key(f"source:{source}", self.caller)] if source else [])

    def web_keys(self, client: str | None) -> list[Key]:
        return [Key(f"web:{client}", self.caller)] if client else []

    def conference_key(self, conference_id: object) -> Key:
        return Key(f"conference:{conference_id}", self.conference)

    def failed(self, keys: Sequence[Key], *, conference_id: object | None = None) -> None:
        """After a wrong code (its claim's failures stay): the alarms. Blocking (database); run it in a thread.
        Calls run it concurrently: the check and the raising of an alarm are done under one lock, or two wrong codes
        arriving together would both cross the threshold and raise it twice."""
        with self._alarm_lock:
            self._failed(conference_id)

    def _failed(self, conference_id: object | None) -> None:
        now = self.throttle.now()
        self._recent = [t for t in self._recent if t > now - timedelta(minutes=1)] + [now]
        if len(self._recent) > self._alarm_per_min and (
            self._last_alarm is None or now - self._last_alarm >= timedelta(minutes=1)
        ):
            log.error("code alarm: %d wrong codes in the last minute, all callers", len(self._recent))
            self._last_alarm = now
        if conference_id is None:
            return
        key, room = self.conference_key(conference_id), str(conference_id)
        window = timedelta(seconds=self.conference.window_s)
        self._alarmed = {c: t for c, t in self._alarmed.items() if t > now - window}
        if room not in self._alarmed and self.throttle.failures(key) >= self.conference.free:
            self._alarmed[room] = now
            log.warning(
                "conference %s: %d wrong entry codes within %.0f s: tries slowed to one per %.0f s at most",
                conference_id,
                self.conference.free,
                self.conference.window_s,
                self.conference.max_s,
            )
            for listener in (self.on_guessing, self.notify_host):
                if listener is not None:
                    listener(room)
