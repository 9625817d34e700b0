"""Converters from raw setting values (TOML-typed, or strings from the environment) to typed values.

Each parser raises :class:`BadValue` whose message is the *expected form*; the loader adds the key and the source.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers

from config.secret import Secret, secret_url

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
Parser = Callable[[object], T]


class BadValue(ValueError):
    """The raw value does not have the expected form; ``str(exc)`` describes that form."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DialInNumber:
    """A public dial-in number: E.164 for machines, formatted for people (ITU-T E.123)."""

    e164: str
    international: str
    national: str


def integer(lo: int, hi: int) -> Parser[int]:
    expected = f"a whole number from {lo} to {hi}"

    def parse(raw: object) -> int:
        if isinstance(raw, bool):
            raise BadValue(expected)
        if isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
            raw = int(raw)
        if not isinstance(raw, int) or not lo <= raw <= hi:
            raise BadValue(expected)
        return raw

    return parse


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise BadValue("true or false")


def choice(enum: type[E]) -> Parser[E]:
    expected = "one of " + ", ".join(f'"{m.value}"' for m in enum)

    def parse(raw: object) -> E:
        try:
            return enum(str(raw).strip().lower())
        except ValueError:
            raise BadValue(expected) from None

    return parse


def listing(item: Parser[T], expected_item: str, *, non_empty: bool = False) -> Parser[tuple[T, ...]]:
    """A TOML array, or a comma-separated string (from the environment)."""
    expected = f"a list of {expected_item}" + (" (at least one)" if non_empty else "")

    def parse(raw: object) -> tuple[T, ...]:
        if isinstance(raw, str):
            raw = [part for part in (p.strip() for p in raw.split(",")) if part]
        if not isinstance(raw, list):
            raise BadValue(expected)
        try:
            values = tuple(item(v) for v in raw)
        except BadValue as exc:
            raise BadValue(f"{expected}; an item is not {exc}") from None
        if non_empty and not values:
            raise BadValue(expected)
        return values

    return parse


def host_port(raw: object) -> HostPort:
    expected = "host:port, e.g. 127.0.0.1:5060 or [::1]:5060"
    text = str(raw).strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", text)
    if match is None:
        raise BadValue(expected)
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise BadValue(expected)
    if match.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise BadValue(expected) from None
    return HostPort(host, port)


def optional_host_port(raw: object) -> HostPort | None:
    if isinstance(raw, str) and not raw.strip():
        return None
    try:
        return host_port(raw)
    except BadValue:
        raise BadValue("host:port, or an empty string for none") from None


def channel_template(raw: object) -> str:
    text = str(raw).strip()
    if "{number}" not in text or any(c in text for c in "\r\n"):
        raise BadValue('an Asterisk dial string holding {number}, e.g. "PJSIP/{number}@clinic-trunk"')
    return text


def base_url(raw: object) -> str:
    expected = "an http:// or https:// URL with a host and no query, e.g. https://visio.example.org"
    text = str(raw).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise BadValue(expected)
    return text


def optional_base_url(raw: object) -> str:
    """A base URL, or empty for none."""
    return base_url(raw) if str(raw).strip() else ""


def oidc_scope(raw: object) -> str:
    """OAuth 2.0 scopes separated by spaces; ``openid`` must be one of them."""
    words = str(raw).split()
    if "openid" not in words or not all(re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", w) for w in words):
        raise BadValue('scopes separated by spaces, "openid" among them, e.g. "openid profile email"')
    return " ".join(words)


def database_url(raw: object) -> Secret:
    expected = 'an SQLAlchemy URL, e.g. "sqlite:///var/passerelle.sqlite3" or "postgresql+psycopg://u:p@host/db"'
    text = str(raw).strip()
    if not re.fullmatch(r"(sqlite|postgresql)(\+\w+)?://.*", text):
        raise BadValue(expected)
    return secret_url(text)


def secret(raw: object) -> Secret:
    if not isinstance(raw, str):
        raise BadValue("a string")
    return Secret(raw.strip())


@functools.cache
def known_timezones() -> frozenset[str]:
    """IANA names; computed once, as :func:`zoneinfo.available_timezones` walks the whole tz database."""
    return frozenset(available_timezones())


def timezone_name(raw: object) -> str:
    expected = 'an IANA timezone name, e.g. "Europe/Paris"'
    text = str(raw).strip()
    if text not in known_timezones():
        raise BadValue(expected)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadValue(expected) from None
    return text


def region(raw: object) -> str:
    text = str(raw).strip().upper()
    if text not in phonenumbers.SUPPORTED_REGIONS:
        raise BadValue('an ISO 3166 alpha-2 region with a phone numbering plan, e.g. "FR"')
    return text


def e164_number(raw: object) -> DialInNumber:
    expected = 'an E.164 phone number with its country code, e.g. "+33491000000"'
    text = str(raw).strip()
    if not re.fullmatch(r"\+[1-9]\d{5,14}", text):
        raise BadValue(expected)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise BadValue(expected) from None
    if not phonenumbers.is_valid_number(number):
        raise BadValue(expected + " (this one is not a valid number)")
    fmt = phonenumbers.PhoneNumberFormat
    return DialInNumber(
        e164=phonenumbers.format_number(number, fmt.E164),
        international=phonenumbers.format_number(number, fmt.INTERNATIONAL),
        national=phonenumbers.format_number(number, fmt.NATIONAL),
    )


def sip_host(raw: object) -> str:
    """A SIP host with an optional port (``sip.example.org``, ``192.0.2.7:5070``, ``[2001:db8::1]:5060``) or ``""``."""
    text = str(raw).strip()
    if text and not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?", text):
        raise BadValue('a SIP host, optionally with :port, e.g. "sip.provider.example" or "192.0.2.7:5070"')
    return text


def node_name(raw: object) -> str:
    """A node's name in a cluster (letters, digits, ``.``, ``-``, ``_``; 64 at most) or ``""`` (the host's name)."""
    text = str(raw).strip()
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,64}", text):
        raise BadValue('a node name: letters, digits, ".", "-" and "_", 64 at most, e.g. "bridge-2"')
    return text


def sip_user(raw: object) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"[A-Za-z0-9_.!~*'()&=+$,;?/-]*", text):
        raise BadValue("a SIP user name (letters, digits and -_.!~*'()&=+$,;?/)")
    return text


def short_name(raw: object) -> str:
    """A name shown in a text message, e.g. a clinic's: one line, at most 40 characters (it shares 160 with the
    link and the codes)."""
    text = " ".join(str(raw).split())
    if len(text) > 40 or any(unicodedata.category(c)[0] == "C" for c in text):
        raise BadValue('a short name on one line (40 characters at most), e.g. "Clinique du Parc"')
    return text


def ice_url(raw: object) -> str:
    text = str(raw).strip()
    if not re.fullmatch(r"(stun|turns?):[A-Za-z0-9.\-\[\]:]+(\?transport=(udp|tcp))?", text):
        raise BadValue('a STUN or TURN URL, e.g. "stun:stun.example.org:3478" or "turn:turn.example.org?transport=tcp"')
    return text


def ip_address(raw: object) -> str:
    text = str(raw).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadValue("an IP address, e.g. 127.0.0.1 or 2001:db8::1") from None


def ip_network(raw: object) -> str:
    text = str(raw).strip()
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise BadValue("an IP address or network, e.g. 192.0.2.10 or 198.51.100.0/24") from None


def path(raw: object) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise BadValue("a file or folder path")
    return Path(raw).expanduser()


def optional_path(raw: object) -> Path | None:
    if not isinstance(raw, str):
        raise BadValue("a file path, or an empty string for none")
    return Path(raw).expanduser() if raw.strip() else None


def sender_address(raw: object) -> str:
    """The From of emails: ``address`` or ``Name <address>``."""
    text = str(raw).strip()
    if not re.fullmatch(r"(?:[^<>\r\n]*<)?[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+>?", text) or ("<" in text) != text.endswith(
        ">"
    ):
        raise BadValue('an email address, or "Name <address>"')
    return text


SMS_FIELDS = ("username", "password", "sender", "to", "text", "coding")


def sms_url_template(raw: object) -> str:
    """An http(s) URL with ``{to}`` and ``{text}`` (optionally {username} {password} {sender} {coding}), or empty."""
    text = str(raw).strip()
    if not text:
        return ""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        names = {"?"}
    if not re.match(r"https?://[^\s/]+", text) or not {"to", "text"} <= names or not names <= set(SMS_FIELDS):
        raise BadValue("an http(s) URL with {to} and {text} (and any of {username} {password} {sender} {coding})")
    return text
