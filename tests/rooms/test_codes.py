from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from rooms import ValidationError, codes
from rooms.errors import CodeSpaceExhausted
from rooms.models import DialCode
from tests.conftest import FakeClock


def test_codes_random_bodies_are_8_digits_and_codes_9() -> None:
    for _ in range(200):
        body = codes.random_code_body()
        assert len(body) == 8
        assert body.isdigit()
        code = codes.make_code(body)
        assert len(code) == 9
        assert codes.is_well_formed(code)


@given(st.integers(0, 10**8 - 1))
def test_codes_every_made_code_is_well_formed(n: int) -> None:
    assert codes.is_well_formed(codes.make_code(f"{n:08d}"))


def test_codes_format_and_normalise() -> None:
    assert codes.format_code("123456789") == "123 456 789"
    assert codes.normalise_code(" 123 456-789# ") == "123456789"
    assert codes.normalise_code("123.456.789") == "123456789"


@pytest.mark.parametrize(("text", "message"), [("12", "got 2"), ("123456789", "got 9"), ("12a4", "0-9 only")])
def test_codes_entry_code_length_and_digits(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        codes.validate_entry_code(text, 4, 8)


def test_codes_entry_code_compare() -> None:
    assert codes.validate_entry_code(" 0042 ", 4, 8) == "0042"
    assert codes.entry_code_matches("0042", "0042")
    assert not codes.entry_code_matches("0042", "042")
    assert not codes.entry_code_matches("0042", "٠٠٤٢")  # Arabic-Indic digits never match ASCII
    assert len(codes.random_entry_code(6)) == 6


def _draws(*bodies: str) -> Iterator[str]:
    yield from bodies


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s, s.begin():
        yield s


def test_codes_allocation_skips_live_and_resting_codes(session: Session, clock: FakeClock) -> None:
    live, resting, fresh = "11111111", "22222222", "33333333"
    session.add(DialCode(code=codes.make_code(live), reserved_until=None))
    session.add(DialCode(code=codes.make_code(resting), reserved_until=clock.now + timedelta(days=1)))
    session.flush()
    draws = _draws(live, resting, live, fresh)
    got = codes.allocate(session, reserved_until=None, now=clock.now, draw=lambda: next(draws))
    assert got == codes.make_code(fresh)
    assert session.scalar(select(func.count()).select_from(DialCode)) == 3


def test_codes_allocation_reclaims_code_whose_rest_is_over(session: Session, clock: FakeClock) -> None:
    old = "44444444"
    session.add(DialCode(code=codes.make_code(old), reserved_until=clock.now - timedelta(seconds=1)))
    session.flush()
    later = clock.now + timedelta(days=30)
    got = codes.allocate(session, reserved_until=later, now=clock.now, draw=lambda: old)
    assert got == codes.make_code(old)
    row = session.get(DialCode, got, populate_existing=True)
    assert row is not None
    assert row.reserved_until == later


def test_codes_allocation_gives_up_when_space_is_full(session: Session, clock: FakeClock) -> None:
    session.add(DialCode(code=codes.make_code("55555555"), reserved_until=None))
    session.flush()
    with pytest.raises(CodeSpaceExhausted):
        codes.allocate(session, reserved_until=None, now=clock.now, draw=lambda: "55555555")
