"""Opus over SIP (RFC 7587): chosen when a phone offers it first with telephone-event, on its 48 kHz clock (RFC 4733
§2.1) or at 8 kHz as baresip offers it, answered as opus/48000/2; two real baresip phones on
Opus meet in a room, and one hears the other's 12 kHz, which neither G.711 nor G.722 carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.rtp.codecs import OPUS
from bridge.sip import sdp
from tests.bridge.stack import audio_offer as offer
from tests.bridge.stack import two_phones_talk
from tests.mixer.signals import magnitude_db, tone


def test_opus_is_chosen_with_events_on_its_own_clock_and_answered_as_rfc_7587_says() -> None:
    opus = "a=rtpmap:111 opus/48000/2\r\n"
    both = "a=rtpmap:101 telephone-event/48000\r\na=rtpmap:100 telephone-event/8000\r\n"
    _, media = sdp.choose(sdp.parse_offer(offer("111 0 101 100", opus + both)))
    assert (media.codec.name, media.codec.rate_hz, media.payload_type, media.event_payload_type) == (
        "opus", 48000, 111, 101)  # fmt: skip
    text, _ = sdp.answer(sdp.parse_offer(offer("111 0 101 100", opus + both)), "127.0.0.1", 20000, 1, 1)
    assert "a=rtpmap:111 opus/48000/2" in text
    assert "a=rtpmap:101 telephone-event/48000" in text
    eight = "a=rtpmap:100 telephone-event/8000\r\n"
    _, media = sdp.choose(sdp.parse_offer(offer("111 0 100", opus + eight)))  # as baresip offers it
    assert (media.codec.name, media.event_payload_type, media.event_clock_hz) == ("opus", 100, 8000)
    text, _ = sdp.answer(sdp.parse_offer(offer("111 0 100", opus + eight)), "127.0.0.1", 20000, 1, 1)
    assert "a=rtpmap:100 telephone-event/8000" in text
    _, media = sdp.choose(sdp.parse_offer(offer("111 0 101", opus + both)), rate_hz=8000)
    assert media.codec.name == "PCMU", "a re-INVITE keeps the call's rate"


def test_an_opus_call_codes_and_decodes_20_ms_frames_and_survives_a_damaged_packet() -> None:
    coder = OPUS.coder()
    frame = tone(1000, 960, 8000, rate=48000)
    packets = [coder.encode(frame) for _ in range(5)]
    decoded = [coder.decode(p) for p in packets]
    assert all(d.shape == (960,) for d in decoded)
    assert magnitude_db(decoded[-1], 1000, rate=48000) > -20
    assert coder.decode(b"\xff\xfe\x00garbage").dtype.name == "int16"  # no exception reaches the packet path


@pytest.mark.e2e
def test_sip_opus_phones_hear_each_other_in_fullband(tmp_path: Path) -> None:
    counts, chosen, (a, b) = two_phones_talk(tmp_path, ("opus", "g711"), 48000, (12000, 1000), 35000, channels=2)
    assert counts == [1, 2]
    assert chosen == ["opus", "opus"]
    assert len(b) == 96000, "the phone's decoder did not run at 48 kHz"
    assert magnitude_db(b, 12000, rate=48000) > -30, "B does not hear A's 12 kHz: the call is not fullband"
    assert magnitude_db(a, 1000, rate=48000) > -30, "A does not hear B"
    assert magnitude_db(a, 12000, rate=48000) < magnitude_db(a, 1000, rate=48000) - 40, "A hears itself"
