"""G.722 wideband calls: two real baresip phones offering G.722 first meet in a room, and one hears the other's
6 kHz, which no G.711 call carries. A phone whose offer lacks telephone-event gets G.711 (its keys come as tones,
and the tone detector listens at 8 kHz)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.sip import sdp
from tests.bridge.stack import audio_offer as offer
from tests.bridge.stack import two_phones_talk
from tests.mixer.signals import magnitude_db


def test_g722_is_chosen_when_offered_first_with_telephone_event() -> None:
    events = "a=rtpmap:101 telephone-event/8000\r\n"
    _, media = sdp.choose(sdp.parse_offer(offer("9 0 101", "a=rtpmap:9 G722/8000\r\n" + events)))
    assert (media.codec.name, media.codec.rate_hz, media.payload_type) == ("G722", 16000, 9)
    text, _ = sdp.answer(sdp.parse_offer(offer("9 0 101", events)), "127.0.0.1", 20000, 1, 1)
    assert "a=rtpmap:9 G722/8000" in text, "G.722's RTP clock is 8000 in SDP (RFC 3551 §4.5.2)"
    _, media = sdp.choose(sdp.parse_offer(offer("9 0", "")))
    assert media.codec.name == "PCMU", "G.722 without telephone-event: keys would be tones the detector cannot hear"
    _, media = sdp.choose(sdp.parse_offer(offer("9 8 101", events)), rate_hz=8000)
    assert media.codec.name == "PCMA", "a re-INVITE keeps the call's rate"
    assert "9 G722/8000" in sdp.offer("127.0.0.1", 20000).split("m=audio")[1].split("\r\n", 1)[1]


@pytest.mark.e2e
def test_sip_g722_phones_hear_each_other_in_wideband(tmp_path: Path) -> None:
    counts, chosen, (a, b) = two_phones_talk(tmp_path, ("g722", "g711"), 16000, (6000, 1000), 34000)
    assert counts == [1, 2]
    assert chosen == ["G722", "G722"]
    assert len(b) == 32000, "the phone's decoder did not run at 16 kHz"
    assert magnitude_db(b, 6000, rate=16000) > -30, "B does not hear A's 6 kHz: the call is not wideband"
    assert magnitude_db(a, 1000, rate=16000) > -30, "A does not hear B"
    assert magnitude_db(a, 6000, rate=16000) < magnitude_db(a, 1000, rate=16000) - 40, "A hears itself"
