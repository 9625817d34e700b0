"""One digit stream per call, whichever way the digits come: RFC 4733 events, SIP INFO, or in-band tones.

- RFC 4733: a digit counts when its event starts (a new RTP timestamp); its repeated updates and its three end
  packets add nothing; an event whose end never arrives is closed after ``event_timeout_s`` without updates.
- Once RFC 4733 events arrive on a call the in-band detector is switched off for it (``inband_wanted`` turns
  False): the tones in the audio are then the same key presses, echoed.
- The same digit arriving from two sources within ``duplicate_window_s`` counts once (a gateway that sends both
  RFC 4733 and SIP INFO, or tones left in the audio).

Pure: the caller gives the time (monotonic seconds) with every input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dtmf.rfc4733 import TelephoneEvent, parse_sip_info


class DigitSource(StrEnum):
    RFC4733 = "rfc4733"
    SIP_INFO = "sip-info"
    INBAND = "inband"


@dataclass(frozen=True, slots=True)
class Digit:
    digit: str
    source: DigitSource
    at_s: float


@dataclass
class DigitStream:
    duplicate_window_s: float = 0.1
    event_timeout_s: float = 0.5
    inband_wanted: bool = True
    _current_timestamp: int | None = None
    _current_ended: bool = True
    _last_update_s: float = 0.0
    _recent: list[Digit] = field(default_factory=list)

    def rtp_event(self, payload: bytes, rtp_timestamp: int, now_s: float) -> Digit | None:
        """An RTP telephone-event packet (payload bytes and RTP timestamp). Malformed payloads raise ValueError."""
        event = TelephoneEvent.parse(payload)
        self.inband_wanted = False
        self.expire(now_s)
        if rtp_timestamp == self._current_timestamp:
            self._last_update_s = now_s
            self._current_ended = self._current_ended or event.end
            return None  # an update or a repeated end of the digit already counted
        self._current_timestamp = rtp_timestamp
        self._current_ended = event.end
        self._last_update_s = now_s
        if event.digit is None:
            return None
        return self._accept(event.digit, DigitSource.RFC4733, now_s)

    def sip_info(self, content_type: str, body: str, now_s: float) -> Digit | None:
        digit, _duration_ms = parse_sip_info(content_type, body)
        return self._accept(digit, DigitSource.SIP_INFO, now_s)

    def inband(self, digit: str, now_s: float) -> Digit | None:
        if not self.inband_wanted:
            return None
        return self._accept(digit, DigitSource.INBAND, now_s)

    def expire(self, now_s: float) -> None:
        """Close an RFC 4733 event whose end packets were lost."""
        if not self._current_ended and now_s - self._last_update_s > self.event_timeout_s:
            self._current_ended = True

    @property
    def event_open(self) -> bool:
        return not self._current_ended

    def _accept(self, digit: str, source: DigitSource, now_s: float) -> Digit | None:
        self._recent = [d for d in self._recent if now_s - d.at_s <= self.duplicate_window_s]
        if any(d.digit == digit and d.source is not source for d in self._recent):
            return None
        accepted = Digit(digit, source, now_s)
        self._recent.append(accepted)
        return accepted
