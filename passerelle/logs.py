"""What the process writes to its log: never personal data from a failed database statement.

SQLAlchemy's ``hide_parameters`` (:func:`rooms.db.make_engine`) keeps the bound values out of its messages, but the
database server's own words may still quote one: PostgreSQL's "invalid input syntax for type …: "<value>"", a
unique violation's ``DETAIL: Key (email)=(…)``, a ``CONTEXT`` line. So every log record carrying a database error
has it replaced by its kind and statement, the traceback kept (which says where, not what).
"""

from __future__ import annotations

import logging
import types

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


def install() -> None:
    """On every handler of the root logger (after ``logging.basicConfig``)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(HidePersonalData())
