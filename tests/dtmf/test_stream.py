from __future__ import annotations

import pytest

from dtmf.rfc4733 import TelephoneEvent, event_code, parse_sip_info
from dtmf.stream import DigitSource, DigitStream


def packet(digit: str, duration: int, end: bool = False) -> bytes:
    return bytes(TelephoneEvent(event_code(digit), end, 10, duration))


def test_rfc4733_payload_round_trip() -> None:
    event = TelephoneEvent(11, True, 10, 800)
    assert TelephoneEvent.parse(bytes(event)) == event
    assert bytes(event) == b"\x0b\x8a\x03\x20"
    assert event.digit == "#"
    assert TelephoneEvent(16, False, 0, 0).digit is None  # flash: not a digit
    with pytest.raises(ValueError, match="4 bytes"):
        TelephoneEvent.parse(b"\x01\x02")
    with pytest.raises(ValueError, match="out of range"):
        bytes(TelephoneEvent(1, False, 64, 0))


def test_stream_rfc4733_digit_once_despite_updates_and_three_ends() -> None:
    stream = DigitStream()
    got = [stream.rtp_event(packet("5", 160 * k), 1000, 0.02 * k) for k in range(1, 6)]
    got += [stream.rtp_event(packet("5", 800, end=True), 1000, 0.12 + 0.001 * k) for k in range(3)]
    digits = [d for d in got if d is not None]
    assert len(digits) == 1
    assert digits[0].digit == "5"
    assert digits[0].source is DigitSource.RFC4733
    assert not stream.event_open


def test_stream_same_key_twice_is_two_digits() -> None:
    stream = DigitStream()
    first = stream.rtp_event(packet("1", 160), 1000, 0.0)
    stream.rtp_event(packet("1", 800, end=True), 1000, 0.1)
    second = stream.rtp_event(packet("1", 160), 3000, 0.3)
    assert first is not None
    assert second is not None


def test_stream_lost_end_closed_after_timeout() -> None:
    stream = DigitStream(event_timeout_s=0.5)
    stream.rtp_event(packet("7", 160), 1000, 0.0)
    assert stream.event_open
    stream.expire(0.4)
    assert stream.event_open
    stream.expire(0.6)
    assert not stream.event_open
    assert stream.rtp_event(packet("7", 320), 1000, 0.7) is None  # a late update of the same event


def test_stream_first_packet_lost_digit_still_counted() -> None:
    stream = DigitStream()
    assert stream.rtp_event(packet("9", 480), 5000, 0.0) is not None


def test_stream_rfc4733_switches_inband_off() -> None:
    stream = DigitStream()
    assert stream.inband("3", 0.0) is not None
    stream.rtp_event(packet("4", 160), 1000, 1.0)
    assert not stream.inband_wanted
    assert stream.inband("4", 1.05) is None


@pytest.mark.parametrize(
    ("content_type", "body", "digit"),
    [
        ("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n", "5"),
        ("application/dtmf-relay; charset=utf-8", "signal= #\nduration=250", "#"),
        ("application/dtmf-relay", "Signal=11\r\nDuration=100\r\n", "#"),
        ("application/dtmf-relay", "Signal=10\r\n", "*"),
        ("application/dtmf", "7", "7"),
        ("Application/DTMF", " d \r\n", "D"),
    ],
)
def test_sip_info_bodies(content_type: str, body: str, digit: str) -> None:
    assert parse_sip_info(content_type, body)[0] == digit


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/dtmf-relay", "Duration=160", "without Signal="),
        ("application/dtmf-relay", "Signal=55", "not a DTMF signal"),
        ("application/dtmf", "x", "not a DTMF signal"),
        ("text/plain", "5", "not a DTMF content type"),
    ],
)
def test_sip_info_garbage_refused(content_type: str, body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sip_info(content_type, body)


def test_stream_same_digit_two_sources_within_100_ms_counts_once() -> None:
    stream = DigitStream()
    assert stream.sip_info("application/dtmf-relay", "Signal=2\r\nDuration=100", 0.0) is not None
    assert stream.inband("2", 0.08) is None
    assert stream.inband("2", 0.25) is not None  # later: a second press
    assert stream.sip_info("application/dtmf", "3", 0.3) is not None
    assert stream.sip_info("application/dtmf", "3", 0.35) is not None  # same source: a real repeat


def test_stream_rfc4733_and_sip_info_duplicates() -> None:
    stream = DigitStream()
    assert stream.rtp_event(packet("8", 160), 1000, 0.0) is not None
    assert stream.sip_info("application/dtmf", "8", 0.05) is None
    assert stream.sip_info("application/dtmf", "9", 0.05) is not None
