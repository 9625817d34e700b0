"""SIP signalling on aiosipua, RTP on the bridge's own loop (bridge/rtp/): the bridge's SIP user agent.

Why aiosipua and not sippy (both prototyped here, issue 18): aiosipua is asyncio-native, so signalling runs on the
media loop with no thread and no process hop, costs nothing between messages, and types its API; it has UDP and TCP
(TLS is its TCP transport with an SSL context, below), dialogs, CANCEL, re-INVITE, PRACK, session timers, digest
authentication and REGISTER. sippy 2.5 speaks SIP over UDP (and WebSocket) only — no TCP, no TLS, which the bridge
must offer — and runs a process-wide singleton event thread at 100 Hz.

What this module adds on top of aiosipua, each because a real phone or an attacker needed it:
- The packet's real source address on every call (``InboundCall.source``): the security limits key on it.
- A retransmitted INVITE (UDP, the 200 lost or slow) is the same call: the last response is sent again, never a
  second call.
- Our BYE is retransmitted (RFC 3261 timer E) until answered, and its Via names the real transport.
- Over TCP and TLS, responses go back on the connection the request came on (RFC 3261 §18.2.2), whatever the Via.
- SIP INFO (DTMF) is answered and handed to the call; aiosipua alone answers 405.
- Unreadable messages are counted by reason and logged once each (never a traceback per packet); aiosipua's own
  log lines, which carry addresses, are kept at ERROR.
- An answered call that hears no RTP for ``rtp_timeout_s`` (a phone that vanished without BYE) is hung up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import itertools
import logging
import secrets
import socket
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiosipua.auth import SipDigestAuth
from aiosipua.dialog import DialogState
from aiosipua.headers import parse_via, stringify_via
from aiosipua.incoming_call import IncomingCall
from aiosipua.message import SipMessage, SipRequest, SipResponse
from aiosipua.registration import Registration
from aiosipua.transport import SipTransport, TcpSipTransport, UdpSipTransport
from aiosipua.uac import SipUAC
from aiosipua.uas import SipUAS
from aiosipua.uas_requests import handle_ack

from bridge.rtp.codecs import PCMU
from bridge.rtp.session import RtpHub, RtpLeg, RtpSession, open_session
from bridge.rtp.srtp import Crypto, SrtpContext
from bridge.sip import sdp
from config import Settings
from config.settings import TrunkSettings

log = logging.getLogger(__name__)
logging.getLogger("aiosipua").setLevel(logging.ERROR)  # its warnings name callers' addresses; ours count instead
Address = tuple[str, int]
T1 = 0.5  # RFC 3261 timer T1
USER_AGENT = "Passerelle"
REPORT_EVERY_S = 5  # RTCP sender reports (RFC 3550 §6.2: 5 s is the usual minimum)
FORWARDED_SOURCE = "X-Passerelle-Source"  # the caller's ip:port, added by the SIP front (config/kamailio/)


class CallError(Exception):
    """The call could not be set up or is over; ``reason`` in a word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallState(enum.Enum):
    OFFERED = "offered"  # INVITE received, not answered
    ANSWERED = "answered"  # 200 sent, ACK awaited
    ESTABLISHED = "established"
    CLOSED = "closed"


class Errors:
    """Unreadable or refused SIP, counted by reason; the first of each reason logged."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def count(self, reason: str) -> None:
        self.counts[reason] += 1
        if self.counts[reason] == 1:
            log.info("sip: %s (further ones counted in /stats)", reason)


def _deliver(transport: _Datagrams | _Stream, data: bytes, addr: Address, *, stream: bool) -> None:
    """One message to the UAS: unreadable ones counted, requests stamped with where they came from."""
    try:
        message = SipMessage.parse(data)
    except (ValueError, IndexError, KeyError, UnicodeError) as bad:
        transport.errors.count(f"unreadable message ({type(bad).__name__})")
        return
    if isinstance(message, SipRequest):
        _stamp(message, addr, always=stream)
    if transport.on_message is not None:
        transport.on_message(message, addr)


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: _Datagrams) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:  # an ICMP unreachable for what we sent: the peer is gone
        self.owner.errors.count(f"send failed ({type(exc).__name__})")


class _Datagrams(UdpSipTransport):
    errors: Errors = Errors()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _DatagramProtocol(self), local_addr=self.local_addr
        )

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.strip():  # not a CRLF keep-alive (RFC 5626)
            _deliver(self, data, addr, stream=False)


class _Stream(TcpSipTransport):
    """TCP, or TLS when ``tls`` is set: each response goes back on the connection its request came on."""

    errors: Errors = Errors()
    tls: ssl.SSLContext | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle_connection, host=self.local_addr[0], port=self.local_addr[1], ssl=self.tls
        )

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        _deliver(self, data, addr, stream=True)

    async def stop(self) -> None:
        # A TLS close waits for the peer's close_notify: at shutdown, connections are cut, not left to the GC.
        for _, writer in list(self._connections.values()):
            writer.transport.abort()
        await super().stop()
        await asyncio.sleep(0)  # the aborted transports' callbacks run

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if addr not in self._connections:  # the connection is gone: nothing to answer on
            self.errors.count("no connection to send on")
            return
        super().send(message, addr)


def _stamp(request: SipRequest, addr: Address, *, always: bool) -> None:
    """Via ``received``/``rport`` from the packet's source (RFC 3581); on streams always, so that the response
    finds its connection."""
    vias = request.headers.get("via")
    if not vias:
        return
    try:
        via = parse_via(vias[0])
    except (ValueError, IndexError):
        return
    asked = "rport" in via.params and not via.params["rport"]
    if not (always or asked or via.host != addr[0]):
        return
    via.params["received"] = addr[0]
    if always or asked:
        via.params["rport"] = str(addr[1])
    request.headers.remove("Via")
    request.headers.append("Via", stringify_via(via))
    for rest in vias[1:]:
        request.headers.append("Via", rest)


class InboundCall:
    """One INVITE to the bridge, as the gateway handles it: answer or refuse, wait for the ACK, digits, hang up."""

    def __init__(self, stack: SipStack, uas: _Uas, incoming: IncomingCall, transport: str) -> None:
        self.stack = stack
        self._uas = uas
        self.incoming = incoming
        self.transport = transport  # udp, tcp, tls
        self.source: Address = incoming.source_addr  # where the INVITE came from: the caller's real address
        # What a SIP front (Kamailio) says the caller's address was; believed only from sip.proxies (the gateway)
        self.forwarded_source = incoming.invite.get_header(FORWARDED_SOURCE) or None
        self.peer = _uri_of(incoming.invite.get_header("from") or "")
        self.headers = {"To": incoming.invite.get_header("to") or ""}
        self.state = CallState.OFFERED
        self.session: RtpSession | None = None
        self.media: sdp.Media | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._acked = asyncio.Event()
        self._version = 1 + secrets.randbelow(1 << 30)
        self._session_id = self._version
        self.on_rtp_event: Callable[[bytes, int], None] | None = None
        self.on_info: Callable[[str, str], None] | None = None
        self.on_end: Callable[[InboundCall], None] | None = None
        self._bye: asyncio.Task[None] | None = None
        self.responded = False  # a dialled call: some answer to our INVITE came (its retransmissions stop)
        self.renegotiations = 0  # re-INVITEs answered (hold, resume, a new address)

    @property
    def call_id(self) -> str:
        return self.incoming.call_id

    @property
    def closed(self) -> bool:
        return self.state is CallState.CLOSED

    @property
    def called(self) -> str:
        """The To header: the user part called is the public number or a direct link."""
        return self.headers["To"]

    def listen(self, on_event: Callable[[bytes, int], None], on_info: Callable[[str, str], None]) -> None:
        """Digits: RFC 4733 events as they come (payload, RTP timestamp), SIP INFO bodies (content type, body)."""
        self.on_rtp_event, self.on_info = on_event, on_info

    def leg(self, leg_id: str) -> CallLeg:
        if self.session is None:
            raise CallError("not answered")
        return CallLeg(leg_id, self.session, self)

    @property
    def established(self) -> bool:
        return self.state is CallState.ESTABLISHED

    async def answer(self) -> None:
        """Open the call's RTP and send 200 with the SDP answer; CallError when the offer cannot be answered (the
        caller got 488) or the call is already over."""
        if self.state is not CallState.OFFERED:
            raise CallError("ended" if self.state is CallState.CLOSED else "answered twice")
        try:
            offer = sdp.parse_offer(self.incoming.invite.body)
            _, media = sdp.choose(offer, srtp_required=self.stack.srtp_required)
        except sdp.SdpError as bad:
            self.reject(bad.status)
            raise CallError(str(bad)) from None
        self.session = await open_session(
            self.stack.rtp_host, self.stack.rtp_ports, media.codec, media.remote,
            event_payload_type=media.event_payload_type, on_event=self._rtp_event, label=self.call_label,
            hub=self.stack.rtp_hub,
        )  # fmt: skip
        self.session.payload_type = media.payload_type
        self.session.event_clock_hz = media.event_clock_hz
        if self.closed:  # CANCEL while the ports were being bound
            self.session.close()
            raise CallError("cancelled")
        text, self.media = sdp.answer(offer, self.stack.rtp_host, self.session.local_port, self._session_id,
                                      self._version, srtp_required=self.stack.srtp_required)  # fmt: skip
        if self.media.crypto is not None and self.media.local_crypto is not None:
            self.session.srtp = SrtpContext(self.media.local_crypto, self.media.crypto)
        self.session.sending = self.media.direction in ("sendrecv", "recvonly")
        self._respond_sdp(200, text)
        self.incoming.dialog.confirm()
        self.incoming._answered = True
        self.state = CallState.ANSWERED

    def _rtp_event(self, payload: bytes, timestamp: int) -> None:
        if self.on_rtp_event is not None:
            self.on_rtp_event(payload, timestamp)

    @property
    def call_label(self) -> str:
        return f"{self.transport}-{id(self) & 0xFFFF:04x}"

    async def wait_established(self, timeout: float) -> None:
        if self.state is CallState.ESTABLISHED:
            return
        acked = asyncio.ensure_future(self._acked.wait())
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            done, _ = await asyncio.wait({acked, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            acked.cancel()
            ended.cancel()
        if self.established:
            return
        if not done:
            self.hangup()
            raise CallError("no ACK")
        raise CallError(self.end_reason or "ended")

    def acked(self) -> None:
        if self.state is CallState.ANSWERED:
            self.state = CallState.ESTABLISHED
            self._acked.set()

    def reject(self, status: int = 486) -> None:
        if self.state is CallState.OFFERED:
            with contextlib.suppress(RuntimeError, OSError):
                self.incoming.reject(status)
        self._closed(f"refused {status}")

    def hangup(self) -> None:
        """BYE (retransmitted until answered) once answered; before that, 480."""
        if self.state is CallState.CLOSED:
            return
        if self.state is CallState.OFFERED:
            self.reject(480)
            return
        dialog = self.incoming.dialog
        if dialog.state is DialogState.CONFIRMED:
            host, port = self._uas.transport.local_addr
            bye = dialog.create_request("BYE", via_host=host, via_port=port, via_transport=self.transport.upper())
            bye.headers.set_single("User-Agent", USER_AGENT)
            bye.headers.set_single("Content-Length", "0")
            dialog.terminate()
            self._bye = asyncio.get_running_loop().create_task(self._send_bye(bye))
        self.incoming._stop_retransmissions()
        self._closed("hung up")

    async def _send_bye(self, bye: SipRequest) -> None:
        key = (self.call_id, bye.cseq.seq if bye.cseq else 0)
        answered = asyncio.get_running_loop().create_future()
        self._uas.pending[key] = answered
        interval = T1
        try:
            for _ in range(11):  # timer F: 64 × T1
                self._uas.transport.send(bye, self.source)
                if self._uas.transport.reliable:
                    await asyncio.wait_for(asyncio.shield(answered), 64 * T1)
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(answered), interval)
                    return
                interval = min(interval * 2, 4.0)
        except (TimeoutError, RuntimeError, OSError):
            pass
        finally:
            self._uas.pending.pop(key, None)

    def peer_ended(self, reason: str) -> None:
        self._closed(reason)

    def _closed(self, reason: str) -> None:
        if self.state is CallState.CLOSED:
            return
        self.state = CallState.CLOSED
        self.end_reason = reason
        if self.session is not None:
            self.session.close()
        self.ended.set()
        self.stack.calls.pop(self.call_id, None)
        if self.on_end is not None:
            self.on_end(self)

    def reinvited(self) -> None:
        """A re-INVITE (hold, resume, a new address or codec): answered, and the media follow."""
        request = self.incoming.invite
        if not request.body:  # an offer-less re-INVITE: our SDP again, as the offer (answered in the ACK)
            self._respond_sdp(200, self._current_sdp())
            return
        try:
            offer = sdp.parse_offer(request.body)
            rate = self.session.codec.rate_hz if self.session is not None else None  # the engine mixes it at one rate
            ours = self.media.local_crypto if self.media is not None else None  # our key stays
            text, media = sdp.answer(offer, self.stack.rtp_host, self._port, self._session_id, self._version + 1,
                                     rate_hz=rate, srtp_required=self.stack.srtp_required or ours is not None,
                                     keep=ours)  # fmt: skip
        except sdp.SdpError as bad:  # an SRTP call offered plain RTP again is refused too: no downgrade
            self._respond_sdp(bad.status, None)
            return
        self._version += 1
        session = self.session
        if session is not None:
            if (
                media.crypto is not None
                and media.local_crypto is not None
                and session.srtp is not None
                and ((session.srtp.local, session.srtp.remote) != (media.local_crypto, media.crypto))
            ):  # new keys (RFC 4568 §7.1.4): a context afresh
                session.srtp = SrtpContext(media.local_crypto, media.crypto)
            _agree(session, media)
            if media.remote is not None and media.remote != (self.media.remote if self.media else None):
                session.redirect(media.remote)
            session.sending = media.direction in ("sendrecv", "recvonly") and media.remote is not None
        self.media = media
        self.renegotiations += 1
        self._respond_sdp(200, text)

    @property
    def _port(self) -> int:
        return self.session.local_port if self.session is not None else 9

    def _current_sdp(self) -> str:
        assert self.media is not None  # noqa: S101 - only asked once answered
        ours = self.media.local_crypto
        offer = sdp.parse_offer(sdp.offer(self.stack.rtp_host, self._port, self._session_id, ours))
        return sdp.answer(offer, self.stack.rtp_host, self._port, self._session_id, self._version, keep=ours)[0]

    def _respond_sdp(self, status: int, text: str | None) -> None:
        request = self.incoming.invite
        reason = {200: "OK", 400: "Bad Request"}.get(status, "Not Acceptable Here")
        response = self.incoming.dialog.create_response(request, status, reason)
        if status < 300:  # RFC 3261 §12.1.1: a proxy's Record-Route (the SIP front's) copied into the answer
            for route in request.headers.get("record-route"):
                response.headers.append("Record-Route", route)
        response.headers.set_single("Contact", f"<sip:{self._uas.contact_host}>")
        response.headers.set_single("User-Agent", USER_AGENT)
        interval = self.incoming.session_interval
        if status == 200 and interval:  # RFC 4028 §9: the interval and who refreshes, in every 2xx to INVITE
            refresher = "uas" if self.incoming.session_refresher_us else "uac"
            response.headers.set_single("Session-Expires", f"{interval};refresher={refresher}")
            if self.incoming._caller_supports("timer"):
                response.headers.set_single("Require", "timer")
        if text is not None:
            response.text = text
            response.headers.set_single("Content-Type", "application/sdp")
        self._uas.transport.send_reply(response)
        if status == 200 and not self._uas.transport.reliable:
            self.incoming._start_2xx_retransmission(response)


class CallLeg(RtpLeg):
    """The call's audio for the engine; closing it hangs the call up."""

    def __init__(self, leg_id: str, session: RtpSession, call: InboundCall) -> None:
        super().__init__(leg_id, session)
        self.call = call

    @property
    def heard(self) -> bool:
        """Some packet came from the phone (the gateway's first-media timeout asks)."""
        return self.session.received_packets > 0

    def close(self) -> None:
        self.call.hangup()


def _uri_of(header: str) -> str:
    inside = header.split("<", 1)[1].split(">", 1)[0] if "<" in header else header.split(";", 1)[0]
    return inside.strip()


class _Uas(SipUAS):
    """aiosipua's UAS with what InboundCall needs: retransmitted INVITEs absorbed, ACKs told, INFO answered, the
    answers to our own requests (BYE) routed back, the 200's body written by us."""

    def __init__(self, stack: SipStack, transport: SipTransport, name: str) -> None:
        # Session timers (RFC 4028): aiosipua negotiates the interval and the refresher (422 below its Min-SE,
        # 90 s), refreshes with UPDATE when we are the refresher and watches when the caller is.
        super().__init__(transport, user_agent=USER_AGENT, session_expires=stack.session_expires_s or None)
        self.stack = stack
        self.name = name
        self.pending: dict[tuple[str, int], asyncio.Future[int]] = {}
        self._handlers["ACK"] = self._ack
        self._handlers["INFO"] = self._info
        self.on_invite = self._invite
        self.on_reinvite = self._reinvite
        self.on_bye = self._bye
        self.on_cancel = self._cancel
        self.on_ack_timeout = lambda incoming: self._gone(incoming.call_id, "no ACK")

    @property
    def contact_host(self) -> str:
        host, port = self.transport.local_addr
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{port};transport={self.name}"

    def _handle_options(self, request: SipRequest, addr: Address) -> None:
        if self.stack.draining:  # the SIP front's probe (Kamailio's dispatcher): no new calls for this node
            self._send_error(request, 503, "Service Unavailable")
            return
        super()._handle_options(request, addr)

    def _handle_request(self, request: SipRequest, addr: Address) -> None:
        if request.method.upper() == "INVITE":
            call = self.stack.calls.get(request.call_id or "")
            vias = request.via
            branch = vias[0].branch if vias else None
            if call is not None and call.incoming.invite is not request and branch == _branch(call.incoming.invite):
                self.stack.errors.counts["invite retransmitted"] += 1
                return  # aiosipua's retransmission of our 200, or our 100, covers it
        super()._handle_request(request, addr)

    def _on_message(self, msg: SipRequest | SipResponse, addr: Address) -> None:
        if isinstance(msg, SipResponse):
            cseq = msg.cseq
            future = self.pending.get((msg.call_id or "", cseq.seq if cseq else 0))
            if future is not None:
                if not future.done() and msg.status_code >= 200:
                    future.set_result(msg.status_code)
                return
            call = self.stack.calls.get(msg.call_id or "")
            if call is not None and cseq is not None and cseq.method.upper() == "INVITE":
                call.responded = True
                if msg.status_code >= 300:
                    self._ack_failure(call, msg)
            if self.uac is not None:
                self.uac.handle_response(msg, addr)
            return
        if addr[0] in self.stack.refused_sources:
            return
        super()._on_message(msg, addr)

    def _ack_failure(self, call: InboundCall, response: SipResponse) -> None:
        """The ACK of a non-2xx final answer to our INVITE: same branch, the answer's To (RFC 3261 §17.1.1.3)."""
        invite = call.incoming.invite
        ack = SipRequest(method="ACK", uri=invite.uri)
        for name in ("Via", "From", "Call-ID", "Max-Forwards"):
            value = invite.headers.get_first(name)
            if value:
                ack.headers.set_single(name, value)
        ack.headers.set_single("To", response.headers.get_first("to") or invite.headers.get_first("to") or "")
        ack.headers.set_single("CSeq", f"{invite.cseq.seq if invite.cseq else 1} ACK")
        for route in invite.headers.get("route"):
            ack.headers.append("Route", route)
        ack.headers.set_single("Content-Length", "0")
        self.transport.send(ack, call.source)

    def _invite(self, incoming: IncomingCall) -> None:
        call = InboundCall(self.stack, self, incoming, self.name)
        self.stack.incoming(call)

    def _reinvite(self, incoming: IncomingCall) -> None:
        call = self.stack.calls.get(incoming.call_id)
        if call is not None:
            call.incoming.invite = incoming.invite  # a dialled call's re-INVITE comes wrapped by aiosipua
            call.reinvited()

    def _ack(self, request: SipRequest, addr: Address) -> None:
        handle_ack(self, request, addr)
        call = self.stack.calls.get(request.call_id or "")
        if call is not None:
            call.acked()

    def _info(self, request: SipRequest, addr: Address) -> None:
        call = self.stack.calls.get(request.call_id or "")
        if call is None or not self._validate_in_dialog(call.incoming.dialog, request):
            if call is None:
                self._send_error(request, 481, "Call/Transaction Does Not Exist")
            return
        response = call.incoming.dialog.create_response(request, 200, "OK")
        self.transport.send_reply(response)
        if call.on_info is not None:
            call.on_info((request.content_type or "").split(";", 1)[0].strip().lower(), request.text)

    def _bye(self, incoming: IncomingCall, _: SipRequest) -> None:
        self._gone(incoming.call_id, "the caller hung up")

    def _cancel(self, request: SipRequest, _: Address) -> None:
        self._gone(request.call_id or "", "cancelled")

    def _dispatch_session_expired(self, incoming: IncomingCall) -> None:
        """No refresh within the session interval (RFC 4028 §10): the call is dead, hung up with our own BYE
        (retransmitted, with the right Via), its leg leaves the room. Replaces aiosipua's, which sends its own."""
        self._calls.pop(incoming.call_id, None)
        self._remove_invite_transaction(incoming.invite)
        if incoming._session_timer is not None:
            incoming._session_timer.cancel()
        call = self.stack.calls.get(incoming.call_id)
        if call is not None:
            log.info("call %s: the session expired (no refresh within %s s): hung up", call.call_label,
                     incoming.session_interval)  # fmt: skip
            call.hangup()

    def _gone(self, call_id: str, reason: str) -> None:
        call = self.stack.calls.get(call_id)
        if call is not None:
            call.peer_ended(reason)


async def _resolve(target: str, default_port: int) -> Address:
    """``host``, ``host:port`` or ``[v6]:port`` → an address to send to (A/AAAA records; no SRV)."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif target.count(":") == 1:
        host, port = target.split(":")
    else:
        host, port = target, ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, int(port or default_port), type=socket.SOCK_DGRAM)
    except (OSError, ValueError):
        raise CallError("failed") from None
    address = infos[0][4]
    return str(address[0]), int(address[1])


def _agree(session: RtpSession, media: sdp.Media) -> None:
    """An offer/answer's codec and telephone-event (a re-INVITE, a dialled call's answer) on a running session."""
    if (media.codec, media.payload_type) != (session.codec, session.payload_type):
        session.change_codec(media.codec, media.payload_type)
    session.event_payload_type = media.event_payload_type
    session.event_clock_hz = media.event_clock_hz


def _branch(request: SipRequest) -> str | None:
    vias = request.via
    return vias[0].branch if vias else None


class SipStack:
    """The bridge's SIP side: one UAS per transport on ``host:port`` (TLS on port + 1), RTP ports from a pool."""

    def __init__(
        self,
        host: str,
        port: int,
        transports: tuple[str, ...],
        *,
        rtp_ports: range,
        tls_certificate: Path | None = None,
        rtp_timeout_s: float = 30.0,
        max_calls: int = 250,
        trunk: TrunkSettings | None = None,
        caller_id: str = "",
        on_call: Callable[[InboundCall], None] | None = None,
        srtp_required: bool = False,
        session_expires_s: int = 0,
    ) -> None:
        self.host, self.port, self.transports = host, port, transports
        self.session_expires_s = session_expires_s  # RFC 4028; 0: off
        self.rtp_host = host
        self.rtp_ports = rtp_ports
        self.tls_certificate = tls_certificate
        self.rtp_timeout_s = rtp_timeout_s
        self.max_calls = max_calls
        self.srtp_required = srtp_required
        self.trunk, self.caller_id = trunk, caller_id
        self.on_call = on_call
        self.calls: dict[str, InboundCall] = {}
        self.errors = Errors()
        self.refused_sources: set[str] = set()
        self._agents: list[_Uas] = []
        self._watch: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self.registration: Registration | None = None  # at the trunk's registrar (trunk.register_s)
        self.draining = False  # stopping or drained: OPTIONS answered 503, so that the SIP front sends no new call
        self.rtp_hub: RtpHub | None = None  # reads every call's RTP at the media tick (None: the loop, per packet)

    @classmethod
    def from_settings(cls, settings: Settings) -> SipStack:
        sip = settings.sip
        return cls(
            sip.listen.host, sip.listen.port, tuple(t.value for t in sip.transports),
            rtp_ports=range(sip.rtp_port_min, sip.rtp_port_max + 1), tls_certificate=sip.tls_certificate,
            rtp_timeout_s=sip.rtp_timeout_s, max_calls=sip.max_calls, trunk=settings.trunk,
            caller_id=settings.trunk.caller_id or settings.dial_in.numbers[0].e164, srtp_required=sip.srtp_required,
            session_expires_s=sip.session_expires_s,
        )  # fmt: skip

    @property
    def has_trunk(self) -> bool:
        return self.trunk is not None and bool(self.trunk.domain)

    async def dial(self, uri: str, answer_timeout_s: float, listen: Callable[[InboundCall], None]) -> InboundCall:
        """Call ``uri`` through the trunk; the call once answered. CallError with the reason otherwise: "busy",
        "declined", "no-answer" (no answer within the time: CANCEL sent) or "failed"."""
        trunk = self.trunk
        if trunk is None or not trunk.domain:
            raise CallError("failed")
        agent, remote = await self._trunk_agent(trunk)
        from_uri = f"sip:{self.caller_id}@{trunk.domain}"
        auth = SipDigestAuth(trunk.username or self.caller_id, trunk.password.reveal()) if trunk.password else None
        return await self._place(agent, remote, uri, from_uri, auth, self.srtp_required, answer_timeout_s, listen)

    async def dial_node(
        self, address: str, user: str, caller: str, answer_timeout_s: float, listen: Callable[[InboundCall], None]
    ) -> InboundCall:
        """Call another node of the cluster (``address``: host:port, over UDP) at ``user`` (a direct link), from
        ``caller`` (the caller's number, shown masked in the room there); as :meth:`dial` otherwise."""
        agent = next((a for a in self._agents if a.name == "udp"), None)
        if agent is None:
            raise CallError("failed")
        if agent.uac is None:
            agent.uac = SipUAC(agent.transport)
        remote = await _resolve(address, 5060)
        from_uri = f"sip:{caller or 'anonymous'}@{self.host}"
        return await self._place(agent, remote, f"sip:{user}@{address}", from_uri, None, False, answer_timeout_s,
                                 listen)  # fmt: skip

    async def _place(
        self,
        agent: _Uas,
        remote: Address,
        uri: str,
        from_uri: str,
        auth: SipDigestAuth | None,
        srtp: bool,
        answer_timeout_s: float,
        listen: Callable[[InboundCall], None],
    ) -> InboundCall:
        if agent.uac is None:
            agent.uac = SipUAC(agent.transport)
        uac = agent.uac
        session = await open_session(self.rtp_host, self.rtp_ports, PCMU, None, label="out", hub=self.rtp_hub)
        ours = Crypto.fresh(1, "AES_CM_128_HMAC_SHA1_80") if srtp else None  # SRTP: offered only then
        offer = sdp.parse_offer(sdp.offer(self.rtp_host, session.local_port, crypto=ours))
        outgoing = uac.send_invite(from_uri, uri, remote, offer, user_agent=USER_AGENT, auth=auth)
        wrapper = IncomingCall(
            dialog=outgoing.dialog, invite=outgoing.invite, sdp_offer=None, transport=agent.transport,
            source_addr=remote, user_agent=USER_AGENT,
        )  # fmt: skip
        call = InboundCall(self, agent, wrapper, agent.name)
        call.session = session
        session.on_event = call._rtp_event
        self.calls[call.call_id] = call
        listen(call)
        retransmit = None if agent.transport.reliable else asyncio.get_running_loop().create_task(
            self._retransmit_invite(call, agent, remote)
        )  # fmt: skip
        try:
            await outgoing.wait_answered(timeout=answer_timeout_s)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                uac.send_cancel(outgoing)
            call.peer_ended("no answer")
            raise CallError("no-answer") from None
        except RuntimeError:
            call.peer_ended("refused")
            code = outgoing._reject_code
            raise CallError(
                "busy" if code in (486, 600) else "declined" if code == 603 else
                "no-answer" if code in (408, 480, 487) else "failed"
            ) from None  # fmt: skip
        finally:
            if retransmit is not None:
                retransmit.cancel()
        try:
            if outgoing.sdp_answer is None:
                raise sdp.SdpError("no SDP in the answer")
            _, media = sdp.choose(outgoing.sdp_answer, srtp_required=srtp)
        except sdp.SdpError as bad:
            log.info("dial-out: %s", bad)
            call.state = CallState.ESTABLISHED
            call.hangup()
            raise CallError("failed") from None
        _agree(session, media)
        theirs = media.crypto
        if ours is not None and theirs is not None:
            media = replace(media, local_crypto=ours)
            session.srtp = SrtpContext(ours, theirs)
        session.remote = media.remote
        session.remote_rtcp = (media.remote[0], media.remote[1] + 1) if media.remote else None
        call.media = media
        call.state = CallState.ESTABLISHED
        return call

    async def _retransmit_invite(self, call: InboundCall, agent: _Uas, remote: Address) -> None:
        """UDP: the INVITE again at T1, 2 T1, 4 T1 … until some answer comes (RFC 3261 timer A)."""
        interval = T1
        while not call.responded and not call.closed:
            await asyncio.sleep(interval)
            if call.responded or call.closed:
                return
            agent.transport.send(call.incoming.invite, remote)
            interval = min(interval * 2, 4.0)

    def busy(self) -> bool:
        """sip.max_calls calls already (the one just offered counts among them)."""
        return len(self.calls) > self.max_calls

    async def start(self, on_call: Callable[[InboundCall], None] | None = None) -> None:
        if on_call is not None:
            self.on_call = on_call
        for name in self.transports:
            transport: SipTransport
            if name == "udp":
                transport = _Datagrams(local_addr=(self.host, self.port))
            else:
                transport = _Stream(local_addr=(self.host, self.port + (1 if name == "tls" else 0)))
                if name == "tls":
                    if self.tls_certificate is None:
                        raise ValueError("sip.tls_certificate: needed for TLS")
                    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    context.load_cert_chain(self.tls_certificate)
                    transport.tls = context
            transport.errors = self.errors
            agent = _Uas(self, transport, name)
            await agent.start()
            self._agents.append(agent)
        self._watch = asyncio.get_running_loop().create_task(self._watch_rtp(), name="sip rtp timeout")
        if self.trunk is not None and self.trunk.domain and self.trunk.register_s:
            await self._register(self.trunk)

    async def _trunk_agent(self, trunk: TrunkSettings) -> tuple[_Uas, Address]:
        """The agent of the trunk's transport (with its UAC, made on first use) and where its requests go: the
        outbound proxy, else the domain. CallError("failed") when the transport is not listened on or the name
        does not resolve."""
        agent = next((a for a in self._agents if a.name == trunk.transport.value), None)
        if agent is None:
            raise CallError("failed")
        if agent.uac is None:
            agent.uac = SipUAC(agent.transport)
        remote = await _resolve(trunk.outbound_proxy or trunk.domain, 5061 if agent.name == "tls" else 5060)
        return agent, remote

    async def _register(self, trunk: TrunkSettings) -> None:
        """The bridge's binding at the provider (RFC 3261 §10): REGISTER with the trunk's credentials, refreshed
        at 90 % of what the registrar grants (aiosipua's Registration); a failure is said, never fatal (the
        provider may also route to a static address)."""
        try:
            agent, registrar = await self._trunk_agent(trunk)
        except CallError:
            log.warning("trunk: no %s transport, or the registrar %s does not resolve: not registered",
                        trunk.transport.value, trunk.outbound_proxy or trunk.domain)  # fmt: skip
            return
        assert agent.uac is not None  # noqa: S101 - _trunk_agent made it
        user = trunk.username or self.caller_id
        auth = SipDigestAuth(user, trunk.password.reveal()) if trunk.password else None
        host = trunk.domain.split(":", 1)[0] if trunk.domain.count(":") == 1 else trunk.domain
        registration = Registration(agent.uac, f"sip:{self.caller_id}@{host}", registrar, expires=trunk.register_s,
                                    auth=auth, contact_uri=f"sip:{self.caller_id}@{agent.contact_host}",
                                    registrar_uri=f"sip:{trunk.domain}", user_agent=USER_AGENT)  # fmt: skip
        registration.on_registered = lambda r: log.info("trunk: registered for %d s", r.granted_expires)
        registration.on_failed = lambda r, status, reason: log.warning("trunk: registration refused: %d %s",
                                                                       status, reason)  # fmt: skip
        registration.on_expired = lambda r: log.warning("trunk: registration expired (not refreshed in time)")
        self.registration = registration
        registration.register()

    def incoming(self, call: InboundCall) -> None:
        self.calls[call.call_id] = call
        if self.on_call is None:
            call.reject(480)
            return
        self.on_call(call)

    async def _watch_rtp(self) -> None:
        """A call whose phone sends nothing for rtp_timeout_s (held calls included: a held phone still sends
        RTCP, and its packets keep ``last_heard``) has vanished: BYE."""
        for second in itertools.count():
            await asyncio.sleep(1.0)
            for call in list(self.calls.values()):
                session = call.session
                if call.state is not CallState.ESTABLISHED or session is None:
                    continue
                if second % REPORT_EVERY_S == 0:
                    session.send_report()
                    session.assess_line()
                heard = session.last_heard or session.opened_at
                if session.clock() - heard > self.rtp_timeout_s:
                    log.info("call %s: no RTP for %d s: hung up", call.call_label, self.rtp_timeout_s)
                    call.hangup()

    async def close(self) -> None:
        if self.registration is not None:  # the binding removed (Expires: 0), answered or not
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self.registration.unregister()
            await asyncio.sleep(0.2)
            self.registration.uac.close()  # its refresh and expiry timers
            self.registration = None
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for call in list(self.calls.values()):
            call.hangup()
        await asyncio.sleep(0)
        for agent in self._agents:
            await agent.stop()
        self._agents.clear()
