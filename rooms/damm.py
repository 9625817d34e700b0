"""The Damm check digit (H. M. Damm, *Totally anti-symmetric quasigroups for all orders n ≠ 2, 6*, 2004).

Built on a totally anti-symmetric quasigroup of order 10, it detects every single-digit error and every transposition
of adjacent digits — Luhn misses 09↔90 — with one decimal digit and no letters. A code with its check digit appended
gives an interim digit of 0.
"""

from __future__ import annotations

# The quasigroup table from Damm's thesis (the one reproduced everywhere, e.g. Wikipedia "Damm algorithm").
_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _interim(digits: str) -> int:
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("Damm check digits are computed over decimal digits only")
    interim = 0
    for ch in digits:
        interim = _TABLE[interim][ord(ch) - 48]
    return interim


def check_digit(digits: str) -> str:
    """The digit to append to ``digits``."""
    return str(_interim(digits))


def is_valid(digits: str) -> bool:
    """True when the last digit of ``digits`` is the Damm check digit of the others."""
    return len(digits) >= 2 and digits.isascii() and digits.isdigit() and _interim(digits) == 0
