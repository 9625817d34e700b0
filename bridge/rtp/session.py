"""One call's RTP and RTCP on the bridge's own event loop, and the call as a :class:`bridge.leg.Leg`.

The RTP socket is the session's own, non-blocking. Under the SIP gateway an :class:`RtpHub` reads every call's
socket in one sweep at the start of each media tick (one ``epoll`` for all of them, one ``recvmsg`` per packet):
the loop is not woken for each of the thousands of packets a second a few hundred calls send, and a caller who
floods gets at most ``RtpHub.rounds`` packets read a tick, the rest dropped by the kernel, not by the clock. The
kernel's arrival time of each packet (SO_TIMESTAMPNS) keeps the interarrival jitter exact. Alone (a session
without a hub), the loop reads the socket whenever it is readable. Packets go out with ``sendto`` on the socket.

Receiving: each datagram is checked (bridge/rtp/packet.py), counted by what it is — audio of the negotiated codec
into the jitter buffer, RFC 4733 telephone events to the call's digit stream, RFC 3389 comfort noise — and what is
wrong with it is counted by reason (the first of each reason logged once, never a traceback per packet). Symmetric
RTP (RFC 4961): the session answers where the caller's packets come from, not where its SDP said, which is what
gets through a NAT; it latches to the first source, and moves only when that source has been silent a second.

Sending: one packet per frame the media clock gives, μ-law or A-law by lookup table or G.722 (bridge/rtp/codecs.py);
RFC 4733 digits when asked (:meth:`RtpSession.send_digits`): each event in place of the audio of its frames, one
packet a frame with the event's first timestamp and a growing duration, the marker bit on the first, the end
three times (§2.5.1.2-4), then a pause of audio before the next.
SRTP (SDES) when the SDP agreed it: every packet checked before it is read, protected before it goes.
RTCP on the next port (or on the same one, RFC 5761): a sender report with a report block every few seconds, the
other side's reports read for loss, jitter and round trip (``quality``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.leg import LegKind
from bridge.rtp.codecs import Codec
from bridge.rtp.jitter import JitterBuffer
from bridge.rtp.packet import RtpError, build, is_rtcp, parse
from bridge.rtp.rtcp import ReceiverStats, RtcpError, grade, middle32, mos, sender_report
from bridge.rtp.rtcp import parse as parse_rtcp
from bridge.rtp.srtp import SrtpContext
from dtmf.rfc4733 import TelephoneEvent, event_code

log = logging.getLogger(__name__)
RELATCH_S = 1.0  # the latched source silent this long: another may take its place
CN = 13  # RFC 3389 comfort noise
MAX_DATAGRAM = 2048  # an RTP packet of audio is far smaller; a larger one is cut and refused by its length
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's number; Python names it from 3.12 on some builds
_ANCILLARY = socket.CMSG_SPACE(16)  # one struct timespec
_TIMESPEC = struct.Struct("qq")
_MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: the enum's & costs more than the rest of a packet's reading
_SOL_SOCKET = int(socket.SOL_SOCKET)


Address = tuple[str, int]


class _Rtcp(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.session.rtcp_received(data, addr):
            self.session.remote_rtcp = addr  # symmetric RTCP, as for RTP


@dataclass(slots=True)
class _Event:
    """An RFC 4733 event to send: its code, how long its tone and the pause after it last (ms); once begun, its
    first timestamp, its duration so far (event clock) and the pause so far (RTP clock)."""

    code: int
    tone_ms: int
    pause_ms: int
    timestamp: int | None = None
    duration: int = 0
    paused: int = 0


class RtpSession:
    """The media of one call: made by :func:`open_session`, which binds its ports."""

    def __init__(
        self,
        codec: Codec,
        remote: Address | None,
        *,
        event_payload_type: int | None = 101,
        on_event: Callable[[bytes, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str = "",
    ) -> None:
        self.codec = codec
        self.payload_type = codec.payload_type  # the codec's number on this call (the SDP's, when dynamic)
        self._coder = codec.coder()
        self.remote = remote  # where we send: the SDP's address until the caller's packets say otherwise
        self.remote_rtcp: Address | None = (remote[0], remote[1] + 1) if remote else None
        self.event_payload_type = event_payload_type
        self.on_event = on_event
        self.clock = clock
        self.label = label
        self.jitter = JitterBuffer(codec.rate_hz, clock_hz=codec.clock_hz)
        self.receiver = ReceiverStats(codec.clock_hz)
        self.errors: collections.Counter[str] = collections.Counter()
        self.sock: socket.socket | None = None  # the RTP socket, non-blocking (bound by open_session)
        self.hub: RtpHub | None = None  # reads the socket at each tick; None: the loop reads it when readable
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self.local_port = 0
        self.latched: Address | None = None
        self.last_heard = 0.0  # when the last good packet came (clock), 0: never
        self.ssrc = random.getrandbits(32)
        self._seq = random.getrandbits(16)
        self._ts = random.getrandbits(32)
        self.sent_packets = 0
        self.sent_octets = 0
        self.received_packets = 0
        self._talking = False
        self.quality: dict[str, float | None] = {"loss": None, "jitter_ms": None, "rtt_ms": None}
        self._sr_sent: dict[int, float] = {}  # middle 32 bits of our SRs' NTP time → when we sent them
        self.closed = False
        self.sending = True  # False while the other side holds the call (a=sendonly or inactive offered)
        self.srtp: SrtpContext | None = None  # SDES keys agreed in the SDP (bridge/rtp/srtp.py)
        self.opened_at = clock()
        self._events: collections.deque[_Event] = collections.deque()  # RFC 4733 keys to send, the first under way
        self.event_clock_hz = codec.clock_hz  # telephone-event's rate as agreed: the unit of its durations
        self.sent_digits = 0
        self.line: str | None = None  # "good", "weak" or "poor", as last assessed (assess_line)
        self.on_line: Callable[[str], None] | None = None  # told when that word changes

    def change_codec(self, codec: Codec, payload_type: int | None = None) -> None:
        """A re-INVITE chose another codec: what waits in the jitter buffer is dropped, the coder starts afresh.
        The engine mixes a leg at one rate, so the gateway only changes between codecs of the same rate."""
        self.codec = codec
        self.payload_type = codec.payload_type if payload_type is None else payload_type
        self._coder = codec.coder()
        self.jitter = JitterBuffer(codec.rate_hz, clock_hz=codec.clock_hz)
        self.event_clock_hz = codec.clock_hz

    def redirect(self, remote: Address) -> None:
        """A re-INVITE gave a new address: send there, and latch again to what comes from it."""
        self.remote = remote
        self.latched = None
        if self.rtcp_transport is not None:
            self.remote_rtcp = (remote[0], remote[1] + 1)

    # -- receiving -------------------------------------------------------------------------------------------------

    def receive(self, limit: int) -> int:
        """Read and handle up to ``limit`` datagrams waiting on the socket; how many there were."""
        sock = self.sock
        if sock is None:
            return 0
        for count in range(limit):
            try:
                data, ancillary, flags, addr = sock.recvmsg(MAX_DATAGRAM, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return count
            except OSError as failed:  # nothing a peer sends makes this; counted, never raised into the tick
                self._refused(f"socket-{failed.errno}", ("", 0))
                return count
            if flags & _MSG_TRUNC:
                self._refused("long", addr)
                continue
            arrival = None
            for level, kind, value in ancillary:
                if level == _SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    arrival = seconds + nanoseconds * 1e-9
            try:
                self.datagram_received(data, addr, arrival)
            except Exception:  # a bug, not a packet: the call's other packets and the other calls go on
                self.errors["internal"] += 1
                if self.errors["internal"] == 1:
                    log.exception("rtp %s: a packet could not be handled (further ones counted)", self.label)
        return limit

    def datagram_received(self, data: bytes, addr: Address, arrival: float | None = None) -> None:
        """One datagram from ``addr``; ``arrival``: when the kernel received it (for the jitter; any clock)."""
        if is_rtcp(data):  # multiplexed on the RTP port (RFC 5761)
            self.rtcp_received(data, addr)
            return
        if self.srtp is not None:  # checked before anything else: a forged packet moves no latch
            clear = self.srtp.unprotect(data)
            if clear is None:
                self._refused("srtp-auth", addr)
                return
            data = clear
        try:
            packet = parse(data)
        except RtpError as bad:
            self._refused(bad.reason, addr)
            return
        now = self.clock()
        if addr != self.latched:
            if self.latched is not None and now - self.last_heard < RELATCH_S:
                self._refused("foreign-source", addr)
                return
            self.latched = addr  # symmetric RTP: we answer where it comes from
            self.remote = addr
            if self.rtcp_transport is None:  # RTCP on the RTP port
                self.remote_rtcp = addr
        pt = packet.payload_type
        if pt == self.payload_type:
            if not packet.payload:
                self._refused("empty", addr)
                return
            samples = self._coder.decode(packet.payload)
            self.jitter.put(packet.ssrc, packet.timestamp, samples)
        elif pt == self.event_payload_type:
            if self.on_event is not None:
                self.on_event(packet.payload, packet.timestamp)
        elif pt == CN:
            self.jitter.comfort_noise(packet.payload[0] if packet.payload else 127)
        else:
            self._refused("payload-type", addr)
            return
        self.received_packets += 1
        self.last_heard = now
        self.receiver.packet(packet.ssrc, packet.seq, packet.timestamp, now if arrival is None else arrival)

    def _refused(self, reason: str, addr: Address) -> None:
        self.errors[reason] += 1
        if self.errors[reason] == 1:  # once per reason and call; the rest are counted
            log.info("rtp %s: %s from port %d (further ones counted)", self.label, reason, addr[1])

    def rtcp_received(self, data: bytes, addr: Address) -> bool:
        """The other side's reports (True), or garbage counted (False)."""
        if self.srtp is not None:
            clear = self.srtp.unprotect_rtcp(data)
            if clear is None:
                self._refused("srtcp-auth", addr)
                return False
            data = clear
        try:
            reports, _ = parse_rtcp(data)
        except RtcpError as bad:
            self._refused(f"rtcp-{bad.reason}", addr)
            return False
        now = self.clock()
        for report in reports:
            if report.ntp_middle:
                self.receiver.last_sr, self.receiver.last_sr_at = report.ntp_middle, now
            for block in report.blocks:
                if block.ssrc != self.ssrc:
                    continue
                self.quality["loss"] = round(block.fraction_lost, 3)
                self.quality["jitter_ms"] = round(block.jitter * 1000 / self.codec.clock_hz, 1)
                sent = self._sr_sent.get(block.lsr)
                if sent is not None:  # our own clock both ways: A − LSR − DLSR with LSR's time as we kept it
                    self.quality["rtt_ms"] = round(max(0.0, now - sent - block.dlsr / 65536) * 1000, 1)
        return True

    # -- sending ---------------------------------------------------------------------------------------------------

    def send_digits(self, digits: str, *, duration_ms: int = 100, pause_ms: int = 60) -> None:
        """Queue ``digits`` (0-9, *, #, A-D) as RFC 4733 events; ValueError for anything else, and nothing queued.
        They go out with the frames the media clock sends, so they keep its pace."""
        if self.event_payload_type is None:
            raise ValueError("the other side agreed no telephone-event payload (RFC 4733)")
        if not 40 <= duration_ms <= 2000 or not 40 <= pause_ms <= 2000:
            raise ValueError("digit duration and pause from 40 to 2000 ms")
        events = [_Event(event_code(d), duration_ms, pause_ms) for d in digits]  # ValueError before any is queued
        self._events.extend(events)

    def send(self, frame: npt.NDArray[np.int16]) -> None:
        if self.closed or self.sock is None or self.remote is None:
            return
        step = len(frame) * self.codec.clock_hz // self.codec.rate_hz  # the frame in timestamp units
        if not self.sending:  # held: nothing goes out, the timestamp goes on as the clock does (RFC 3550 §5.1)
            self._talking = False  # the first packet after the hold has the marker bit
        elif self._events:
            self._send_event(step, frame)
        else:
            self._send(self.payload_type, self._coder.encode(frame), marker=not self._talking)
            self._talking = True
        self._ts = (self._ts + step) & 0xFFFFFFFF

    def _send_event(self, step: int, frame: npt.NDArray[np.int16]) -> None:
        """One frame's worth of the current event (or of the pause after it), RFC 4733 §2.5.1."""
        assert self.event_payload_type is not None  # noqa: S101 - send_digits checked it
        event = self._events[0]
        first = event.timestamp is None
        if event.timestamp is None:
            event.timestamp = self._ts
        tone = event.tone_ms * self.event_clock_hz // 1000
        if event.duration < tone:  # the key held: same timestamp, the duration so far
            event.duration = min(0xFFFF, event.duration + step * self.event_clock_hz // self.codec.clock_hz)
            payload = bytes(TelephoneEvent(event.code, False, 10, event.duration))
            self._send(self.event_payload_type, payload, marker=first, timestamp=event.timestamp)
            if event.duration >= tone:  # released: the end, three times (the same duration)
                end = bytes(TelephoneEvent(event.code, True, 10, event.duration))
                for _ in range(3):
                    self._send(self.event_payload_type, end, timestamp=event.timestamp)
                self.sent_digits += 1
            return
        event.paused += step  # the pause: audio again, so that the next key is a new event
        self._send(self.payload_type, self._coder.encode(frame), marker=not self._talking)
        self._talking = True
        if event.paused >= event.pause_ms * self.codec.clock_hz // 1000:
            self._events.popleft()

    def _send(self, payload_type: int, payload: bytes, *, marker: bool = False, timestamp: int | None = None) -> None:
        assert self.sock is not None  # noqa: S101 - checked by the callers
        assert self.remote is not None  # noqa: S101
        data = build(payload_type, self._seq, self._ts if timestamp is None else timestamp, self.ssrc, payload,
                     marker)  # fmt: skip
        self._seq = (self._seq + 1) & 0xFFFF
        self.sent_packets += 1
        self.sent_octets += len(payload)
        try:
            self.sock.sendto(data if self.srtp is None else self.srtp.protect(data), self.remote)
        except OSError as failed:  # the socket's buffer full, the route gone: the packet is lost, as on the wire
            self._refused(f"send-{failed.errno}", self.remote)

    def send_report(self, wall_s: float | None = None) -> None:
        """A sender report with our one report block, to the other side's RTCP port."""
        if self.closed or self.remote_rtcp is None:
            return
        wall = time.time() if wall_s is None else wall_s
        block = self.receiver.block(self.clock()) if self.receiver.ssrc is not None else None
        report = sender_report(self.ssrc, wall, self._ts, self.sent_packets, self.sent_octets, block)
        if self.srtp is not None:
            report = self.srtp.protect_rtcp(report)
        self._sr_sent[middle32(wall)] = self.clock()
        while len(self._sr_sent) > 8:
            self._sr_sent.pop(next(iter(self._sr_sent)))
        try:
            if self.rtcp_transport is not None:
                self.rtcp_transport.sendto(report, self.remote_rtcp)
            elif self.sock is not None and self.remote is not None:  # RTCP on the RTP port (RFC 5761)
                self.sock.sendto(report, self.remote)
        except OSError as failed:
            self._refused(f"send-{failed.errno}", self.remote_rtcp)

    def network(self) -> dict[str, Any]:
        """The call's line as the bridge sees it: the caller's stream as it comes here (loss in the last report's
        interval, interarrival jitter), ours as the other side reports it (RTCP: loss, jitter), the round trip, and
        a MOS estimate from them."""
        receiver, clock = self.receiver, self.codec.clock_hz
        figures: dict[str, Any] = {
            "codec": self.codec.name,
            "received": self.received_packets,
            "lost": receiver.lost,
            "loss_in": None if receiver.recent_loss is None else round(receiver.recent_loss, 3),
            "jitter_in_ms": None if receiver.ssrc is None else round(receiver.jitter * 1000 / clock, 1),
            "loss_out": self.quality["loss"],
            "jitter_out_ms": self.quality["jitter_ms"],
            "rtt_ms": self.quality["rtt_ms"],
            "late": self.jitter.stats.late,
            "concealed": self.jitter.stats.concealed,
            "buffer_ms": self.jitter.delay * self.jitter.frame * 1000 // self.codec.rate_hz,  # the jitter buffer's
            "refused": sum(self.errors.values()),
            "line": self.line,
        }
        figures["mos"] = mos(*_worst(figures))  # an estimate from the worse of both directions
        return figures

    def assess_line(self) -> str:
        """The line in a word (bridge.rtp.rtcp.grade) from the worse of both directions; ``on_line`` is told when
        the word changes. Called after each report (every few seconds), not per packet."""
        figures = self.network()
        word = grade(*_worst(figures))
        if word != self.line:
            self.line = word
            if self.on_line is not None:
                self.on_line(word)
        return word

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.sock is not None:
            if self.hub is not None:
                self.hub.discard(self)
            else:
                with contextlib.suppress(RuntimeError):  # closed after its loop ended: nothing reads it anymore
                    asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
        if self.rtcp_transport is not None:
            self.rtcp_transport.close()


async def open_session(
    host: str,
    ports: range,
    codec: Codec,
    remote: Address | None,
    *,
    mux: bool = False,
    hub: RtpHub | None = None,
    **options: Any,
) -> RtpSession:
    """A session bound to a free even port of ``ports`` (RTCP on the next, unless ``mux``), its RTP read by
    ``hub`` at each tick, or by the loop when readable."""
    loop = asyncio.get_running_loop()
    session = RtpSession(codec, remote, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    start = ports.start + ports.start % 2
    for port in random.sample(range(start, ports.stop - 1, 2), len(range(start, ports.stop - 1, 2))):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            continue
        if not mux:
            try:
                rtcp, _ = await loop.create_datagram_endpoint(lambda: _Rtcp(session), local_addr=(host, port + 1))
            except OSError:
                sock.close()
                continue
            session.rtcp_transport = rtcp
        else:
            session.remote_rtcp = remote
        session.sock, session.local_port = sock, port
        if hub is not None:
            hub.add(session)
        else:
            loop.add_reader(sock.fileno(), session.receive, 64)
        return session
    raise OSError(f"no free RTP port in {ports.start}-{ports.stop - 1}")


def _worst(figures: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """The worse loss and jitter of both directions, and the round trip."""
    losses = [v for v in (figures["loss_in"], figures["loss_out"]) if v is not None]
    jitters = [v for v in (figures["jitter_in_ms"], figures["jitter_out_ms"]) if v is not None]
    return max(losses, default=None), max(jitters, default=None), figures["rtt_ms"]


class RtpHub:
    """Every call's RTP socket, read in one sweep (:meth:`sweep`) at the start of each media tick.

    One ``epoll`` holds them all; a sweep asks it which are readable (without waiting) and reads one datagram from
    each, and again, up to ``rounds`` times: a tick's packets of a few hundred calls cost one ``recvmsg`` each and
    two or three ``epoll_wait``, and no wake-up of the loop. A socket with more than ``rounds`` packets waiting (a
    flood, or a burst after a stall) keeps the rest for the next ticks, and the kernel drops what overflows its
    buffer: no caller can make the sweep, so the tick, longer than its share."""

    def __init__(self, rounds: int = 8) -> None:
        self.rounds = rounds
        self._poll = select.epoll()
        self._sessions: dict[int, RtpSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: RtpSession) -> None:
        assert session.sock is not None  # noqa: S101 - open_session bound it
        fd = session.sock.fileno()
        self._poll.register(fd, select.EPOLLIN)
        self._sessions[fd] = session
        session.hub = self

    def discard(self, session: RtpSession) -> None:
        if session.sock is None or self._sessions.get(session.sock.fileno()) is not session:
            return
        fd = session.sock.fileno()
        del self._sessions[fd]
        with contextlib.suppress(OSError, ValueError):  # the hub closed meanwhile
            self._poll.unregister(fd)

    def sweep(self) -> int:
        """Read what every socket has (up to ``rounds`` datagrams each); how many datagrams were read."""
        read = 0
        for _ in range(self.rounds):
            ready = self._poll.poll(0)
            if not ready:
                break
            sessions = self._sessions
            for fd, _ in ready:
                session = sessions.get(fd)
                if session is not None:
                    read += session.receive(1)
        return read

    def close(self) -> None:
        for session in list(self._sessions.values()):
            session.hub = None
        self._sessions.clear()
        self._poll.close()


class RtpLeg:
    """A call's audio as the engine sees it: 20 ms frames out of the jitter buffer, into packets."""

    def __init__(self, leg_id: str, session: RtpSession) -> None:
        self._id = leg_id
        self.session = session

    @property
    def id(self) -> str:
        return self._id

    @property
    def kind(self) -> LegKind:
        return LegKind.SIP

    @property
    def rate_hz(self) -> int:
        return self.session.codec.rate_hz

    @property
    def closed(self) -> bool:
        return self.session.closed

    def read(self) -> npt.NDArray[np.int16] | None:
        return self.session.jitter.get()

    @property
    def line(self) -> str | None:
        return self.session.line

    def network(self) -> dict[str, Any]:
        return self.session.network()

    def write(self, frame: npt.NDArray[np.int16]) -> None:
        self.session.send(frame)

    def close(self) -> None:
        self.session.close()
