"""RTCP (RFC 3550 §6): what a call's receiver measures and what its reports say.

:class:`ReceiverStats` follows one incoming stream as §A.3 and §A.8 say: the extended highest sequence number,
packets expected and lost (cumulative, and the fraction since the last report), and the interarrival jitter in
timestamp units. :func:`sender_report` / :func:`receiver_report` build a report with one report block;
:func:`parse` reads a compound packet (SR, RR, SDES, BYE, others skipped) and refuses garbage with a reason;
the round trip comes from a report block's LSR and DLSR against when that SR was sent (§6.4.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970
SR, RR, SDES, BYE = 200, 201, 202, 203


class RtcpError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ntp(now_s: float) -> tuple[int, int]:
    """An NTP timestamp (seconds since 1900, fraction) of a Unix time."""
    seconds = int(now_s) + NTP_EPOCH_OFFSET
    return seconds & 0xFFFFFFFF, int((now_s % 1) * 2**32) & 0xFFFFFFFF


def middle32(now_s: float) -> int:
    """The middle 32 bits of the NTP timestamp, as LSR and DLSR count (1/65536 s)."""
    seconds, fraction = ntp(now_s)
    return ((seconds & 0xFFFF) << 16) | (fraction >> 16)


@dataclass
class ReceiverStats:
    """One incoming RTP stream, followed per RFC 3550 Appendix A.3 and A.8."""

    rate_hz: int = 8000
    ssrc: int | None = None
    base_seq: int = 0
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    jitter: float = 0.0  # timestamp units
    _transit: int | None = None
    last_sr: int = 0  # middle 32 bits of the last SR's NTP time
    last_sr_at: float = 0.0  # when it came (local monotonic s)
    recent_loss: float | None = None  # the fraction lost in the interval of the last report block

    def packet(self, ssrc: int, seq: int, timestamp: int, arrival_s: float) -> None:
        if ssrc != self.ssrc:  # a new source: counted afresh
            self.ssrc, self.base_seq, self.max_seq, self.cycles = ssrc, seq, seq, 0
            self.received = self.expected_prior = self.received_prior = 0
            self.jitter, self._transit = 0.0, None
        delta = (seq - self.max_seq) & 0xFFFF
        if 0 < delta < 3000:  # in order, perhaps with a gap
            if seq < self.max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq
        self.received += 1
        transit = int(arrival_s * self.rate_hz) - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < self.rate_hz * 10:  # not a timestamp jump (a new talkspurt's clock)
                self.jitter += (d - self.jitter) / 16
        self._transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.ssrc is not None else 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def block(self, now_s: float) -> bytes:
        """A report block for this stream (and the interval since the last one starts afresh)."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = (lost_interval << 8) // expected_interval if expected_interval > 0 and lost_interval > 0 else 0
        if expected_interval > 0:
            self.recent_loss = max(0, lost_interval) / expected_interval
        lost = min(self.lost, 0x7FFFFF)
        dlsr = int((now_s - self.last_sr_at) * 65536) if self.last_sr else 0
        return struct.pack(
            "!IB3sIIII", self.ssrc or 0, min(fraction, 255), lost.to_bytes(3, "big"), self.extended_max & 0xFFFFFFFF,
            int(self.jitter), self.last_sr, dlsr & 0xFFFFFFFF,
        )  # fmt: skip


def grade(loss: float | None, jitter_ms: float | None, rtt_ms: float | None) -> str:
    """A line in a word, as the room's page says it of a browser's own connection (web/static/room.js): "poor"
    beyond 5 % loss, 60 ms jitter or 400 ms round trip, "weak" beyond 1 %, 30 ms or 200 ms, else "good"."""
    loss_pct, jitter, rtt = (loss or 0.0) * 100, jitter_ms or 0.0, rtt_ms or 0.0
    if loss_pct > 5 or jitter > 60 or rtt > 400:
        return "poor"
    if loss_pct > 1 or jitter > 30 or rtt > 200:
        return "weak"
    return "good"


def mos(loss: float | None, jitter_ms: float | None, rtt_ms: float | None) -> float | None:
    """A listening-quality estimate (1–4.5) by the E-model of ITU-T G.107 with its defaults, for G.711 with packet
    loss concealment: the delay impairment from the one-way delay (half the round trip, twice the jitter for the
    buffer, 10 ms of coding; the common simplified Id), the loss impairment Ie-eff = 95·Ppl / (Ppl + Bpl) with
    G.113's Bpl = 25.1 for G.711 with concealment. None until something is known of the line."""
    if loss is None and jitter_ms is None and rtt_ms is None:
        return None
    delay = (rtt_ms or 0.0) / 2 + 2 * (jitter_ms or 0.0) + 10.0
    lost_pct = min(max((loss or 0.0) * 100, 0.0), 100.0)
    r = 93.2 - (delay / 40 if delay < 160 else (delay - 120) / 10) - 95 * lost_pct / (lost_pct + 25.1)
    r = min(max(r, 0.0), 100.0)
    return round(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r), 2)


def sender_report(
    ssrc: int, wall_s: float, rtp_ts: int, packets: int, octets: int, block: bytes | None = None
) -> bytes:
    seconds, fraction = ntp(wall_s)
    count = 1 if block else 0
    body = struct.pack("!IIIIII", ssrc, seconds, fraction, rtp_ts & 0xFFFFFFFF, packets & 0xFFFFFFFF,
                       octets & 0xFFFFFFFF) + (block or b"")  # fmt: skip
    return struct.pack("!BBH", 0x80 | count, SR, (len(body) + 4) // 4 - 1) + body


def receiver_report(ssrc: int, block: bytes) -> bytes:
    body = struct.pack("!I", ssrc) + block
    return struct.pack("!BBH", 0x81, RR, (len(body) + 4) // 4 - 1) + body


@dataclass
class ReportBlock:
    ssrc: int
    fraction_lost: float  # 0..1
    cumulative_lost: int
    extended_max: int
    jitter: int  # timestamp units
    lsr: int
    dlsr: int

    def round_trip_s(self, arrival_s: float) -> float | None:
        """RFC 3550 §6.4.1: A − LSR − DLSR, in seconds; None when the other side has had no SR from us."""
        if not self.lsr:
            return None
        rtt = (middle32(arrival_s) - self.lsr - self.dlsr) & 0xFFFFFFFF
        return rtt / 65536 if rtt < 0x80000000 else None


@dataclass
class Report:
    kind: int  # SR or RR
    ssrc: int
    ntp_middle: int = 0  # of an SR
    packets: int = 0
    blocks: list[ReportBlock] = field(default_factory=list)


def parse(data: bytes) -> tuple[list[Report], bool]:
    """The SRs and RRs of a compound packet, and whether it held a BYE; RtcpError for garbage."""
    reports: list[Report] = []
    bye = False
    offset = 0
    if len(data) < 8:
        raise RtcpError("short")
    while offset < len(data):
        if len(data) - offset < 4:
            raise RtcpError("short")
        first, kind, words = struct.unpack_from("!BBH", data, offset)
        if first >> 6 != 2:
            raise RtcpError("version")
        end = offset + 4 * (words + 1)
        if end > len(data):
            raise RtcpError("length")
        count = first & 0x1F
        if kind in (SR, RR):
            head = 24 if kind == SR else 4
            if end - offset < 4 + head + 24 * count:
                raise RtcpError("length")
            (ssrc,) = struct.unpack_from("!I", data, offset + 4)
            report = Report(kind, ssrc)
            if kind == SR:
                seconds, fraction, _, packets, _ = struct.unpack_from("!IIIII", data, offset + 8)
                report.ntp_middle = ((seconds & 0xFFFF) << 16) | (fraction >> 16)
                report.packets = packets
            at = offset + 4 + head
            for _ in range(count):
                source, fraction_lost, lost3, highest, jitter, lsr, dlsr = struct.unpack_from("!IB3sIIII", data, at)
                lost = int.from_bytes(lost3, "big", signed=True)
                report.blocks.append(ReportBlock(source, fraction_lost / 256, lost, highest, jitter, lsr, dlsr))
                at += 24
            reports.append(report)
        elif kind == BYE:
            bye = True
        offset = end
    return reports, bye
