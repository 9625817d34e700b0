"""What the process writes to its log: never personal data from a failed database statement, and no flood of
one repeated warning (garbage RTP to a live call once wrote 207 lines for 1,500 packets).

SQLAlchemy's ``hide_parameters`` (:func:`rooms.db.make_engine`) keeps the bound values out of its messages, but the
database server's own words may still quote one: PostgreSQL's "invalid input syntax for type …: "<value>"", a
unique violation's ``DETAIL: Key (email)=(…)``, a ``CONTEXT`` line. So every log record carrying a database error
has it replaced by its kind and statement, the traceback kept (which says where, not what).
"""

from __future__ import annotations

import json
import logging
import re
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, StatementError


class DatabaseErrorDetails(Exception):
    """Stands for a database error in a log record: its kind and statement, none of its values."""


def _sanitised(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StatementError):
            orig = seen.orig if isinstance(seen, DBAPIError) else None
            kind = type(orig).__name__ if orig is not None else type(seen).__name__
            statement = " ".join(str(seen.statement or "").split())[:300]
            return DatabaseErrorDetails(f"{kind} (the database's details are hidden: they may quote personal data) "
                                        f"[SQL: {statement}]")  # fmt: skip
        seen = seen.__cause__ or seen.__context__
    return None


class HidePersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            replacement = _sanitised(record.exc_info[1])
            if replacement is not None:
                tb: types.TracebackType | None = record.exc_info[2]
                record.exc_info = (type(replacement), replacement, tb)
                record.exc_text = None
        return True


_NUMBERS = re.compile(r"\d+")


class RepeatLimiter(logging.Filter):
    """At most ``burst`` records of one kind (logger, level and message with its numbers blurred) per ``window_s``;
    the next one let through after a quiet spell says how many were held back."""

    def __init__(self, burst: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window_s, self._clock = burst, window_s, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int, int]] = {}  # kind → (window start, let, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, record.levelno, _NUMBERS.sub("#", str(record.msg))[:120])
        now = self._clock()
        start, let, held = self._seen.get(kind, (now, 0, 0))
        if now - start >= self.window_s:
            if held:
                record.msg = f"{record.msg} ({held} more like it in the last {self.window_s:.0f} s not shown)"
            start, let, held = now, 0, 0
        if let >= self.burst:
            self._seen[kind] = (start, let, held + 1)
            return False
        self._seen[kind] = (start, let + 1, held)
        if len(self._seen) > 10_000:  # many kinds: forget the oldest windows
            for old in sorted(self._seen, key=lambda k: self._seen[k][0])[:5_000]:
                del self._seen[old]
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601, ms), ``level``, ``logger``, ``message`` and, when there is
    one, ``exception`` (the traceback as text, after HidePersonalData has done its work)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def install(handlers: list[logging.Handler]) -> None:
    """On the process's log handlers (those ``logging.basicConfig`` made)."""
    limiter = RepeatLimiter()
    for handler in handlers:
        handler.addFilter(HidePersonalData())
        handler.addFilter(limiter)
