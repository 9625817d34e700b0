"""Local accounts' passwords: argon2id with argon2-cffi's defaults (RFC 9106's second recommended option: 64 MiB,
3 passes, 4 lanes), and the worker processes that check them away from the media clock.

A check costs ~175 ms of CPU on four lanes. Run in the service's own threads, a burst of sign-ins put a score of
CPU-bound threads beside the media clock on two cores, at the clock's own priority (threads inherit it): the only
late ticks left under the site's load were during sign-ins (bench hostile). :class:`Verifier` checks in worker
processes niced below everything else the service runs, which share no interpreter lock with the loop and yield
the CPU to it at once.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import secrets
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)

WORKER_NICE = 10  # the workers' niceness: below the site's threads (0) and the media clock (-10 when allowed)


@functools.cache
def hasher() -> Any:
    """The one PasswordHasher (argon2id, argon2-cffi's defaults)."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """What an unknown account's password is checked against: the same work either way, so timing tells nothing."""
    return str(hasher().hash(secrets.token_hex(16)))


def verify(digest: str | None, password: str) -> bool:
    """Whether ``password`` matches ``digest``; None (no such account, or no password) is checked against a dummy
    hash and is never a match."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        hasher().verify(digest or dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return digest is not None


def _lower_priority() -> None:
    """A worker's first act: below the rest of the service (an unprivileged process may always lower its own)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(WORKER_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError:  # not Linux, or a sandbox that forbids it: the check still runs, at the default priority
        log.warning("passwords: cannot lower the checking workers' priority")
    dummy_hash()  # made once per worker, before its first sign-in


class Verifier:
    """Checks passwords in ``workers`` processes niced to WORKER_NICE, made on first use (forkserver: nothing of
    the service's threads is forked). ``verify`` blocks its caller (a thread of the site's) until the worker
    answers; a worker that died is replaced and the check tried again once. ``close()`` stops the workers (and may
    be called twice); a check after it starts them again (an aiohttp application may be set up and cleaned up
    more than once)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_lower_priority)
            return self._pool

    def run(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` in a worker (module-level functions only); what it returns."""
        for attempt in (1, 2):
            pool = self._executor()
            try:
                return pool.submit(function, *args).result()
            except BrokenProcessPool:
                with self._lock:
                    if self._pool is pool:
                        self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 2:
                    raise
                log.warning("passwords: a checking worker died; starting another")
        raise AssertionError("unreachable")

    def verify(self, digest: str | None, password: str) -> bool:
        return bool(self.run(verify, digest, password))

    def warm(self) -> None:
        """Start the workers now rather than at the first sign-in."""
        self.run(dummy_hash)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
