from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms import damm

bodies = st.text(alphabet="0123456789", min_size=1, max_size=12)


def test_damm_known_vectors() -> None:
    # The worked example of Damm's algorithm: 572 → 4.
    assert damm.check_digit("572") == "4"
    assert damm.is_valid("5724")
    assert not damm.is_valid("5723")


@given(bodies, st.data())
def test_damm_catches_every_single_digit_error(body: str, data: st.DataObject) -> None:
    code = body + damm.check_digit(body)
    position = data.draw(st.integers(0, len(code) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != code[position]]))
    assert not damm.is_valid(code[:position] + wrong + code[position + 1 :])


@given(bodies, st.data())
def test_damm_catches_every_adjacent_transposition(body: str, data: st.DataObject) -> None:
    code = body + damm.check_digit(body)
    position = data.draw(st.integers(0, len(code) - 2))
    a, b = code[position], code[position + 1]
    if a == b:
        return
    swapped = code[:position] + b + a + code[position + 2 :]
    assert not damm.is_valid(swapped)


def test_damm_exhaustive_on_all_two_digit_bodies() -> None:
    """Every body of 2 digits: all 27 single errors and the transpositions of the 3-digit codes are caught."""
    for n in range(100):
        code = f"{n:02d}" + damm.check_digit(f"{n:02d}")
        for i in range(3):
            for d in "0123456789":
                if d != code[i]:
                    assert not damm.is_valid(code[:i] + d + code[i + 1 :])
        for i in range(2):
            if code[i] != code[i + 1]:
                assert not damm.is_valid(code[:i] + code[i + 1] + code[i] + code[i + 2 :])


@pytest.mark.parametrize("bad", ["", "12a", "١٢٣", "12 3"])
def test_damm_rejects_non_digits(bad: str) -> None:
    assert not damm.is_valid(bad)
    if bad:
        with pytest.raises(ValueError, match="decimal digits"):
            damm.check_digit(bad)
