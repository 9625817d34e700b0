"""RFC 4733 telephone-event payloads (DTMF named events, section 3.2) and SIP INFO DTMF bodies.

A telephone-event packet carries one event for a period: the same RTP timestamp is repeated while the key is held,
with a growing duration, and the end is sent three times with the E bit (RFC 4733 §2.5.1.4). SIP INFO carries
one digit per request, as ``application/dtmf-relay`` (``Signal=5`` / ``Duration=160``) or ``application/dtmf``
(the digit alone).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

EVENT_DIGITS = "0123456789*#ABCD"  # event codes 0-15 (RFC 4733 §3.2, Table 7)


def event_code(digit: str) -> int:
    index = EVENT_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte payload: event, end bit, volume (dBm0 below 0, 0-63) and duration in timestamp units."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) < 4:
            raise ValueError(f"telephone-event payload is 4 bytes, got {len(data)}")
        event, flags, duration = struct.unpack("!BBH", data[:4])
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63 or not 0 <= self.duration <= 0xFFFF:
            raise ValueError("telephone-event field out of range")
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit, or None for the other events of the registry (flash, modem tones…)."""
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None


_RELAY_SIGNAL = re.compile(r"^\s*signal\s*=\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
_RELAY_DURATION = re.compile(r"^\s*duration\s*=\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)


def parse_sip_info(content_type: str, body: str) -> tuple[str, int | None]:
    """The digit (and duration in ms when given) of a SIP INFO body; ValueError if it holds none."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/dtmf-relay":
        match = _RELAY_SIGNAL.search(body)
        if match is None:
            raise ValueError("application/dtmf-relay body without Signal=")
        duration = _RELAY_DURATION.search(body)
        return _signal(match.group(1)), int(duration.group(1)) if duration else None
    if kind == "application/dtmf":
        return _signal(body.strip()), None
    raise ValueError(f"not a DTMF content type: {content_type!r}")


def _signal(value: str) -> str:
    text = value.strip().upper()
    if text in ("10", "11"):  # some gateways send the event code for * and #
        return EVENT_DIGITS[int(text)]
    if len(text) == 1 and text in EVENT_DIGITS:
        return text
    raise ValueError(f"not a DTMF signal: {value!r}")
