"""Dial-in codes and entry codes.

A dial-in code is 9 digits: 8 drawn with :mod:`secrets` plus a Damm check digit (:mod:`rooms.damm`), so a mistyped
digit or a swapped pair is told apart from an unknown conference without asking the database, and guessing is
1 in 10⁸ per well-formed try. A code held by a live conference is never handed out again; a released code rests
(``codes.reuse_after_days``) before anyone else may get it: an old invitation must not lead into a stranger's room.

Entry codes (4–8 digits) are a second secret of a conference: compared in constant time, never logged.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rooms import damm
from rooms.errors import CodeSpaceExhausted, ValidationError
from rooms.models import DialCode

CODE_BODY_DIGITS = 8
CODE_DIGITS = CODE_BODY_DIGITS + 1
MAX_DRAWS = 64

CodeDraw = Callable[[], str]
_INSERT: dict[str, Callable[..., Any]] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def random_code_body() -> str:
    """Eight uniformly random digits (leading zeros included)."""
    return f"{secrets.randbelow(10**CODE_BODY_DIGITS):0{CODE_BODY_DIGITS}d}"


def make_code(body: str) -> str:
    """``body`` with its Damm check digit appended."""
    if not re.fullmatch(rf"\d{{{CODE_BODY_DIGITS}}}", body):
        raise ValueError(f"a dial-in code body is {CODE_BODY_DIGITS} digits")
    return body + damm.check_digit(body)


def normalise_code(text: str) -> str:
    """Digits of a code as people write it ("123 456 789", "123-456-789#") — no other characters allowed."""
    return re.sub(r"[\s.\-]", "", text).removesuffix("#")


def is_well_formed(code: str) -> bool:
    return len(code) == CODE_DIGITS and damm.is_valid(code)


def format_code(code: str) -> str:
    """``123456789`` → ``123 456 789`` (groups of three are easiest to read out and type)."""
    return " ".join(code[i : i + 3] for i in range(0, len(code), 3))


def validate_entry_code(text: str, min_digits: int, max_digits: int, field: str = "entry_code") -> str:
    code = text.strip()
    if not re.fullmatch(r"\d+", code) or not code.isascii():
        raise ValidationError(field, f"expected {min_digits} to {max_digits} digits (0-9 only)")
    if not min_digits <= len(code) <= max_digits:
        raise ValidationError(field, f"expected {min_digits} to {max_digits} digits, got {len(code)}")
    return code


def random_entry_code(digits: int) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def entry_code_matches(expected: str, given: str) -> bool:
    """Constant-time comparison, so response time tells nothing about how many digits were right."""
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", errors="replace"))


def allocate(
    session: Session,
    *,
    reserved_until: datetime | None,
    now: datetime,
    draw: CodeDraw = random_code_body,
) -> str:
    """Reserve a fresh code in ``session``'s transaction and return it (the caller links it to its conference).

    A code whose rest is over is reclaimed even from the conference that had it (that one ended long ago).
    Race-free across processes: the code is the primary key, inserted with ON CONFLICT DO NOTHING; a taken code is
    reclaimed only if its rest has ended, by a conditional UPDATE that a concurrent allocator cannot also win.
    """
    dialect = session.get_bind().dialect.name
    for _ in range(MAX_DRAWS):
        code = make_code(draw())
        row = {"code": code, "conference_id": None, "reserved_until": reserved_until}
        stmt = _INSERT[dialect](DialCode).values(**row).on_conflict_do_nothing(index_elements=["code"])
        if session.execute(stmt.returning(DialCode.code)).scalar_one_or_none() is not None:
            return code
        reclaimed = session.execute(
            update(DialCode)
            .where(
                DialCode.code == code,
                DialCode.reserved_until.is_not(None),
                DialCode.reserved_until <= now,
            )
            .values(conference_id=None, reserved_until=reserved_until)
            .returning(DialCode.code)
            .execution_options(synchronize_session=False)
        )
        if reclaimed.scalar_one_or_none() is not None:
            return code
    raise CodeSpaceExhausted(f"no free dial-in code after {MAX_DRAWS} draws")
