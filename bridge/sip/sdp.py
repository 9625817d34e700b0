"""The bridge's SDP answer (RFC 3264) to a phone's offer, and its own offer when it dials out.

Parsing and writing SDP is aiosipua's (bridge/sip/stack.py); choosing is ours: the first codec of the offer that the
bridge speaks (G.722, PCMU, PCMA), matched by name and RTP clock rate (a dynamic payload type is the offerer's
number, and the answer keeps it, RFC 3264 §6.1); G.722 only when the offer has telephone-event too, since keys sent
as tones are heard by a detector at 8 kHz. Telephone-event at the offer's payload type, the answer's direction
mirroring the offer's (hold: ``sendonly`` or ``inactive`` offered, ``recvonly`` or ``inactive`` answered). Every
other m-line is refused with port 0, in the offer's order. SRTP keyed in the SDP (SDES, RFC 4568: bridge/rtp/srtp.py)
when the offer has a usable ``a=crypto``; ``sip.srtp_required`` refuses plain RTP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from aiosipua.sdp import Codec as SdpCodec
from aiosipua.sdp import ConnectionData, MediaDescription, Origin, SdpMessage, TimingField, parse_sdp, serialize_sdp

from bridge.engine import INBAND_RATE_HZ
from bridge.rtp import srtp
from bridge.rtp.codecs import G722, OPUS, PCMA, PCMU, Codec
from bridge.rtp.srtp import Crypto

CODECS: dict[str, Codec] = {"OPUS": OPUS, "G722": G722, "PCMU": PCMU, "PCMA": PCMA}
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000), 13: ("CN", 8000)}
_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(ValueError):
    """An offer the bridge cannot answer; ``status`` is the SIP response to give (488 or 400)."""

    def __init__(self, message: str, status: int = 488) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Media:
    """What was agreed for the call's audio."""

    codec: Codec
    payload_type: int  # the codec's number on this call (static for G.711)
    event_payload_type: int | None  # telephone-event, when the offer had it
    remote: tuple[str, int] | None  # where the offer says to send; None on hold (c=0.0.0.0 or port 0)
    direction: str  # the offer's: sendrecv, sendonly (held by the phone), recvonly, inactive
    ptime_ms: int
    proto: str = "RTP/AVP"  # the offer's, which the answer keeps (RTP/SAVP: SRTP)
    crypto: Crypto | None = None  # SRTP (SDES): the other side's key, for what it sends
    local_crypto: Crypto | None = None  # ours, for what the bridge sends (said in our SDP)
    event_clock_hz: int = 8000  # telephone-event's rtpmap rate: its durations' unit (its timestamps are the stream's)


def _name_rate(codec: SdpCodec) -> tuple[str, int]:
    if codec.encoding_name:
        return codec.encoding_name.upper(), codec.clock_rate or 8000
    return _STATIC.get(codec.payload_type, ("", 0))


def parse_offer(body: bytes | str) -> SdpMessage:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return parse_sdp(text)
    except (UnicodeDecodeError, ValueError, IndexError, KeyError) as bad:
        raise SdpError(f"unreadable SDP: {type(bad).__name__}", 400) from None


def choose(offer: SdpMessage, rate_hz: int | None = None, *, srtp_required: bool = False) -> tuple[int, Media]:
    """The audio m-line's index in the offer and what the bridge takes of it; SdpError when nothing fits.
    ``rate_hz``: only a codec of that audio rate (a re-INVITE: the engine mixes a call at one rate).
    SRTP when the m-line offers a usable ``a=crypto`` (RTP/SAVP, or RTP/AVP as "best effort" phones do); RTP/SAVP
    with none usable, or plain RTP when ``srtp_required``, is passed over."""
    refused_for_srtp = False
    for index, media in enumerate(offer.media):
        proto = media.proto.upper()
        if media.media != "audio" or media.port == 0 or proto not in ("RTP/AVP", "RTP/SAVP"):
            continue
        crypto = srtp.choose(media.attributes.get("crypto", []))
        if crypto is None and (proto == "RTP/SAVP" or srtp_required):
            refused_for_srtp = True
            continue
        named = [(codec.payload_type, *_name_rate(codec)) for codec in media.codecs]
        events = {rate: pt for pt, name, rate in reversed(named) if name == "TELEPHONE-EVENT"}
        chosen: tuple[Codec, int] | None = None
        event: int | None = None
        for pt, name, rate in named:
            known = CODECS.get(name)
            if known is None or known.clock_hz != rate or rate_hz not in (None, known.rate_hz):
                continue
            # RFC 4733 §2.1: events in the audio's stream run on the audio's clock; phones that offer Opus with
            # telephone-event/8000 only (baresip) are taken too, the events' durations then counted at 8 kHz.
            event_clock = known.clock_hz if known.clock_hz in events else 8000
            event = events.get(event_clock)
            if known.rate_hz != INBAND_RATE_HZ and event is None:
                continue  # keys would come as tones only, and the tone detector listens at 8 kHz: G.711 then
            chosen = known, pt
            break
        if chosen is None:
            continue
        connection = media.connection or offer.connection
        address = connection.address if connection is not None else ""
        remote = None if address in ("", "0.0.0.0", "::") else (address, media.port)  # noqa: S104 - RFC 2543 hold
        ptime = media.attributes.get("ptime", ["20"])[0]
        return index, Media(
            codec=chosen[0], payload_type=chosen[1], event_payload_type=event, remote=remote,
            direction=media.direction, ptime_ms=int(ptime) if ptime.isdigit() else 20, proto=media.proto,
            crypto=crypto, event_clock_hz=event_clock,
        )  # fmt: skip
    if refused_for_srtp:
        raise SdpError("no SRTP key the bridge can use (SDES: AES_CM_128_HMAC_SHA1_80 or _32, inline, no MKI)")
    raise SdpError("no audio codec in common (the bridge speaks Opus, G.722, PCMU and PCMA)")


def _audio(
    port: int, codec: Codec, payload_type: int, event: int | None, direction: str, crypto: Crypto | None = None,
    proto: str = "RTP/AVP", event_clock_hz: int = 8000,
) -> MediaDescription:  # fmt: skip
    formats = [str(payload_type)] + ([str(event)] if event is not None else [])
    channels = f"/{codec.channels}" if codec.channels > 1 else ""
    attributes: dict[str, list[str]] = {"rtpmap": [f"{payload_type} {codec.name}/{codec.clock_hz}{channels}"]}
    if event is not None:
        attributes["rtpmap"].append(f"{event} telephone-event/{event_clock_hz}")
        attributes["fmtp"] = [f"{event} 0-16"]
    attributes["ptime"] = ["20"]
    attributes[direction] = []
    if crypto is not None:
        attributes["crypto"] = [crypto.line()]
    return MediaDescription(media="audio", port=port, proto=proto, formats=formats, attributes=attributes)


def _envelope(host: str, session_id: int, version: int, media: list[MediaDescription]) -> SdpMessage:
    kind = "IP6" if ":" in host else "IP4"
    return SdpMessage(
        origin=Origin("-", str(session_id), str(version), "IN", kind, host), session_name="Passerelle",
        connection=ConnectionData("IN", kind, host), timing=TimingField(0, 0), media=media,
    )  # fmt: skip


def answer(
    offer: SdpMessage, host: str, port: int, session_id: int, version: int, rate_hz: int | None = None, *,
    srtp_required: bool = False, keep: Crypto | None = None,
) -> tuple[str, Media]:  # fmt: skip
    """The SDP answer's text for the bridge's RTP at ``host:port``, and what was agreed. With SRTP the answer has
    the offer's tag and suite and a key of ours: ``keep``'s (a re-INVITE), else a fresh one."""
    index, media = choose(offer, rate_hz, srtp_required=srtp_required)
    if media.crypto is not None:
        remote = media.crypto
        local = (Crypto(remote.tag, remote.suite, keep.key) if keep is not None and keep.suite == remote.suite
                 else Crypto.fresh(remote.tag, remote.suite))  # fmt: skip
        media = replace(media, local_crypto=local)
    direction = _ANSWER_DIRECTION[media.direction]
    ours = _audio(port, media.codec, media.payload_type, media.event_payload_type, direction, media.local_crypto,
                  media.proto, media.event_clock_hz)  # fmt: skip
    lines = [
        ours if i == index else MediaDescription(media=m.media, port=0, proto=m.proto, formats=list(m.formats))
        for i, m in enumerate(offer.media)
    ]
    return serialize_sdp(_envelope(host, session_id, version, lines)), media


def offer(host: str, port: int, session_id: int | None = None, crypto: Crypto | None = None) -> str:
    """The bridge's own offer (dial-out): G.722 (wideband when the far end has it), PCMU, PCMA, telephone-event 101;
    RTP/SAVP with ``crypto`` (our key) when given."""
    sid = session_id if session_id is not None else int(time.time())
    media = _audio(port, G722, 9, 101, "sendrecv", crypto, "RTP/SAVP" if crypto is not None else "RTP/AVP")
    media.formats[1:1] = ["0", "8"]
    media.attributes["rtpmap"][1:1] = ["0 PCMU/8000", "8 PCMA/8000"]
    return serialize_sdp(_envelope(host, sid, sid, [media]))
