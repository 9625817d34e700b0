"""Phone numbers and email addresses: validated, normalised (E.164, ITU-T E.164) and masked for logs."""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

from rooms.errors import ValidationError

_SMS_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PERSONAL_NUMBER}
# Deliberately plain (RFC 5321 lengths, one @, a dotted domain): the real test of an address is delivery.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")


def normalise_phone(text: str, region: str, *, field: str = "phone", for_sms: bool = False) -> str:
    """A phone number as typed ("06 12 34 56 78", "+32 470 12 34 56") → E.164; ``region`` for national forms."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError(field, "expected a phone number, e.g. 06 12 34 56 78 or +33 6 12 34 56 78") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(field, "not a valid phone number")
    if for_sms and phonenumbers.number_type(number) not in _SMS_TYPES:
        raise ValidationError(field, "not a mobile number: a text message cannot reach it")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# What the bridge may call out to: people's lines. Premium-rate, shared-cost and the like are refused.
_DIALABLE_TYPES = {
    PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.TOLL_FREE,
}  # fmt: skip


def dialable_phone(text: str, region: str, allowed_countries: tuple[str, ...], *, field: str = "number") -> str:
    """A number the bridge may dial out to, in E.164: valid, of an allowed country, a person's line."""
    e164 = normalise_phone(text, region, field=field)
    number = phonenumbers.parse(e164, None)
    country = phonenumbers.region_code_for_number(number)
    if country not in allowed_countries:
        raise ValidationError(field, f"calls to {country or 'this country'} are not allowed "
                                     f"(trunk.allowed_countries: {', '.join(allowed_countries)})")  # fmt: skip
    if phonenumbers.number_type(number) not in _DIALABLE_TYPES:
        raise ValidationError(field, "not a fixed or mobile line (premium-rate and shared-cost numbers are refused)")
    return e164


def mask_phone(e164: str) -> str:
    """``+33612345678`` → ``+33 6 •• •• •• 78``: country, first and last two digits only — safe for logs."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return "•••"
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    prefix = f"+{number.country_code} "
    national = shown.removeprefix(prefix)
    total = sum(ch.isdigit() for ch in national)
    seen = 0
    out = []
    for ch in national:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen == 1 or seen > total - 2 else "•")
        else:
            out.append(ch)
    return prefix + "".join(out)


def normalise_email(text: str, *, field: str = "email") -> str:
    address = text.strip()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise ValidationError(field, "expected an email address such as name@example.org")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def mask_email(address: str) -> str:
    """``alice.martin@example.org`` → ``a•••@example.org``."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def readable_phone(e164: str, region: str) -> str:
    """``+33612345678`` → ``06 12 34 56 78`` for a reader in the number's own country, ``+33 6 12 34 56 78``
    elsewhere: as people write numbers, never the bare E.164."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    same = phonenumbers.region_code_for_number(number) == region
    shown = phonenumbers.PhoneNumberFormat.NATIONAL if same else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return str(phonenumbers.format_number(number, shown))
