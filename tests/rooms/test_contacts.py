"""Numbers the bridge may dial out to."""

from __future__ import annotations

import pytest

from rooms.contacts import dialable_phone
from rooms.errors import ValidationError

ALLOWED = ("FR", "BE")


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("+33 4 91 00 00 00", "+33491000000"),
        ("+32 470 12 34 56", "+32470123456"),
        ("0800 10 20 30", "+33800102030"),  # toll-free: free for the patient and for us
    ],
)
def test_dialable_numbers_become_e164(typed: str, e164: str) -> None:
    assert dialable_phone(typed, "FR", ALLOWED) == e164


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("+44 7911 123456", "not allowed"),  # a valid UK mobile: not an allowed country
        ("+1 212 736 5000", "not allowed"),
        ("08 99 12 34 56", "premium-rate"),  # French premium rate
        ("0 810 12 34 56", "premium-rate"),  # French shared cost
        ("12", "not a valid phone number"),
        ("call me", "expected a phone number"),
    ],
)
def test_numbers_outside_the_rules_are_refused_with_the_reason(typed: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as refused:
        dialable_phone(typed, "FR", ALLOWED)
    assert refused.value.field == "number"
