"""SRTP keyed by SDES (RFC 4568): two real baresip phones that require it (RTP/SAVP) meet in a room and hear each
other through the bridge's SRTP; a tampered or replayed packet is refused and counted; the a=crypto lines the bridge
cannot use are passed over, and with sip.srtp_required plain RTP is refused."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import numpy as np
import pytest

from bridge.rtp.packet import build
from bridge.rtp.session import RtpLeg
from bridge.rtp.srtp import Crypto, CryptoError, SrtpContext, choose
from bridge.sip import sdp
from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

KEY = base64.b64encode(bytes(range(30))).decode()


def offer(proto: str, crypto: list[str]) -> str:
    lines = "".join(f"a=crypto:{c}\r\n" for c in crypto)
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 40000 {proto} 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{lines}a=sendrecv\r\n"
    )


def test_crypto_lines_the_bridge_cannot_use_are_passed_over() -> None:
    suite = "AES_CM_128_HMAC_SHA1_80"
    for bad in (f"1 F8_128_HMAC_SHA1_80 inline:{KEY}", f"x {suite} inline:{KEY}", f"1 {suite} inline:{KEY}|2^20|1:4",
                f"1 {suite} inline:abc", f"1 {suite} inline:{KEY} UNENCRYPTED_SRTP", f"1 {suite}"):  # fmt: skip
        with pytest.raises(CryptoError):
            Crypto.parse(bad)
    assert Crypto.parse("7 AES_CM_128_HMAC_SHA1_32 inline:" + KEY + "|2^31").tag == 7
    chosen = choose(["1 F8_128_HMAC_SHA1_80 inline:" + KEY, "2 AES_CM_128_HMAC_SHA1_80 inline:" + KEY])
    assert chosen is not None
    assert (chosen.tag, chosen.key) == (2, bytes(range(30)))


def test_sdp_answers_srtp_with_the_offer_tag_and_a_key_of_its_own() -> None:
    text, media = sdp.answer(sdp.parse_offer(offer("RTP/SAVP", [f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"])),
                             "127.0.0.1", 20000, 1, 1)  # fmt: skip
    assert "m=audio 20000 RTP/SAVP 0 101" in text
    assert media.local_crypto is not None
    assert media.local_crypto.key != bytes(range(30))
    assert f"a=crypto:{media.local_crypto.line()}" in text
    assert media.local_crypto.line().startswith("3 AES_CM_128_HMAC_SHA1_80 inline:")
    with pytest.raises(sdp.SdpError) as refused:
        sdp.choose(sdp.parse_offer(offer("RTP/SAVP", ["1 F8_128_HMAC_SHA1_80 inline:" + KEY])))
    assert refused.value.status == 488
    _, plain = sdp.choose(sdp.parse_offer(offer("RTP/AVP", [])))
    assert plain.crypto is None
    with pytest.raises(sdp.SdpError):
        sdp.choose(sdp.parse_offer(offer("RTP/AVP", [])), srtp_required=True)
    again, _ = sdp.answer(sdp.parse_offer(offer("RTP/SAVP", [f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"])),
                          "127.0.0.1", 20000, 1, 2, keep=media.local_crypto)  # fmt: skip
    assert base64.b64encode(media.local_crypto.key).decode() in again, "a re-INVITE's answer keeps our key"


def test_a_tampered_or_replayed_packet_is_refused() -> None:
    ours, theirs = Crypto.fresh(1, "AES_CM_128_HMAC_SHA1_80"), Crypto.fresh(1, "AES_CM_128_HMAC_SHA1_80")
    bridge, phone = SrtpContext(ours, theirs), SrtpContext(theirs, ours)
    packet = phone.protect(build(0, 1, 160, 1234, b"\xff" * 160, False))
    assert bridge.unprotect(packet) == build(0, 1, 160, 1234, b"\xff" * 160, False)
    assert bridge.unprotect(packet) is None, "a replay passed"
    tampered = bytearray(phone.protect(build(0, 2, 320, 1234, b"\xff" * 160, False)))
    tampered[20] ^= 1
    assert bridge.unprotect(bytes(tampered)) is None, "a tampered packet passed"
    assert bridge.unprotect(build(0, 3, 480, 1234, b"\xff" * 160, False)) is None, "plain RTP passed"


@pytest.mark.e2e
def test_sip_srtp_phones_hear_each_other(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    phones = [
        Phone(tmp_path / n, free_port(), free_port(), base, tone(hz, 8000 * 30, 8000, rate=8000), mediaenc="srtp-mand")
        for n, base, hz in (("a", 34400, 700), ("b", 34600, 1300))
    ]

    async def scenario() -> tuple[list[int], list[bool], list[int]]:
        async with running(settings, rooms) as stack:
            counts = []
            for k, phone in enumerate(phones):
                await stack.dial_in(phone, conference.code)  # the code as RFC 4733 events
                counts.append(await stack.wait_for_legs(room, k + 1))
            await asyncio.sleep(4.0)
            legs = [call.leg for call, _ in stack.gateway._calls.values() if isinstance(call.leg, RtpLeg)]
            secured = [leg.session.srtp is not None for leg in legs]
            # baresip's first RTCP, an APP "PING" to open NATs, goes in clear before its SRTP starts: refused as
            # srtcp-auth, rightly. Every RTP packet must pass.
            refused = [leg.session.errors["srtp-auth"] for leg in legs]
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            return counts, secured, refused

    try:
        counts, secured, refused = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        for phone in phones:
            phone.stop()
    assert counts == [1, 2]
    assert secured == [True, True]
    assert refused == [0, 0], "RTP packets of the phones failed their SRTP check"
    a, b = (phone.heard()[-8000 * 2 :] for phone in phones)
    assert magnitude_db(a, 1300, rate=8000) > -30, "A does not hear B"
    assert magnitude_db(b, 700, rate=8000) > -30, "B does not hear A"


@pytest.mark.e2e
def test_sip_srtp_required_refuses_plain_rtp_and_dials_out_with_srtp(tmp_path: Path) -> None:
    """sip.srtp_required: a phone offering plain RTP gets 488 and never reaches the menu; the bridge's own calls
    offer RTP/SAVP, and a callee (a baresip phone behind the "trunk") that requires SRTP answers and hears the
    bridge through it."""
    callee_port = free_port()
    settings, rooms = make_rooms(
        tmp_path, PASSERELLE_SIP__SRTP_REQUIRED="true", PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{callee_port}",
        PASSERELLE_TRUNK__ANSWER_TIMEOUT_S="5",
    )  # fmt: skip
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    plain = Phone(tmp_path / "plain", free_port(), free_port(), 34800, tone(700, 8000 * 30, 8000, rate=8000))
    callee = Phone(tmp_path / "callee", callee_port, free_port(), 35000, tone(1300, 8000 * 30, 8000, rate=8000),
                   answer="auto", keep_sip_port=True, mediaenc="srtp-mand")  # fmt: skip

    async def scenario() -> tuple[int, bool, bool]:
        async with running(settings, rooms) as stack:
            await asyncio.to_thread(plain.command, "dial", f"sip:+33491000000@127.0.0.1:{stack.port}")
            await asyncio.sleep(2.0)
            plain_calls = len(stack.gateway._calls)
            plain_up = await asyncio.to_thread(plain.in_call)
            await stack.gateway.dial_out(conference.id, "06 12 34 56 78")
            await stack.wait_for_legs(str(conference.id), 1, limit_s=10)
            legs = [call.leg for call, _ in stack.gateway._calls.values() if isinstance(call.leg, RtpLeg)]
            secured = len(legs) == 1 and legs[0].session.srtp is not None
            await asyncio.sleep(1.0)
            await asyncio.to_thread(callee.command, "hangup")
            return plain_calls, plain_up, secured

    try:
        plain_calls, plain_up, secured = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        plain.stop()
        callee.stop()
    assert (plain_calls, plain_up) == (0, False), "a plain-RTP call got in though SRTP is required"
    assert "488" in (tmp_path / "plain" / "baresip.log").read_text()
    assert secured, "the call out is not SRTP"
    heard = callee.heard()
    assert len(heard) > 8000
    assert float(np.sqrt(np.mean(heard[:16000].astype(np.float64) ** 2))) > 300, "the callee heard nothing"
