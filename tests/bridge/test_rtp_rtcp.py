"""RTCP (bridge/rtp/rtcp.py): loss and interarrival jitter measured as RFC 3550's appendices say, sender and
receiver reports read back as written, the round trip from LSR and DLSR, and garbage refused with a reason."""

from __future__ import annotations

import struct

import pytest

from bridge.rtp.rtcp import RR, SR, ReceiverStats, RtcpError, middle32, parse, receiver_report, sender_report


def test_loss_across_the_sequence_wrap_and_jitter_of_a_steady_and_a_jittery_stream() -> None:
    stats = ReceiverStats()
    for n in range(200):  # every tenth packet lost, the sequence wrapping at 65535
        if n % 10 != 9:
            stats.packet(0xCAFE, (65500 + n) & 0xFFFF, n * 160, 100.0 + n * 0.02)
    assert stats.expected == 200 - 1  # the last one (n = 199) was lost: not yet known
    assert stats.lost == 19
    block = stats.block(now_s=104.0)
    _, fraction, lost3, highest, jitter, _, _ = struct.unpack("!IB3sIIII", block)
    assert fraction == (19 << 8) // 199
    assert int.from_bytes(lost3, "big") == 19
    assert highest == (1 << 16) + (65500 + 198 - 65536)
    assert jitter == 0  # every packet exactly 20 ms after the last
    jittery = ReceiverStats()
    for n in range(500):  # 0 or 10 ms late, alternately: |D| = 80 timestamp units each time
        jittery.packet(1, n, n * 160, n * 0.02 + (0.01 if n % 2 else 0.0))
    assert 75 < jittery.jitter <= 80


def test_reports_are_read_back_and_the_round_trip_comes_from_lsr_and_dlsr() -> None:
    stats = ReceiverStats()
    for n in range(50):
        stats.packet(0xBEEF, n, n * 160, n * 0.02)
    sent_at = 1_700_000_000.25  # we sent an SR then; the other side held it 0.5 s and answered
    sr = sender_report(0x1111, sent_at, 8000, 50, 8000, stats.block(now_s=1.0))
    (report,), bye = parse(sr)
    assert (report.kind, report.ssrc, report.packets, bye) == (SR, 0x1111, 50, False)
    assert report.ntp_middle == middle32(sent_at)
    assert report.blocks[0].ssrc == 0xBEEF
    theirs = ReceiverStats()
    theirs.packet(0x1111, 1, 160, 0.0)
    theirs.last_sr, theirs.last_sr_at = report.ntp_middle, 10.0
    rr = receiver_report(0x2222, theirs.block(now_s=10.5))
    (back,), _ = parse(rr + struct.pack("!BBHI", 0x81, 203, 1, 0x2222))  # with a BYE after it
    assert back.kind == RR
    rtt = back.blocks[0].round_trip_s(sent_at + 0.5 + 0.08)
    assert rtt is not None
    assert abs(rtt - 0.08) < 0.001


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\xc8", "short"),
        (b"\x40\xc9\x00\x01" + b"\x00" * 4, "version"),
        (b"\x81\xc9\x00\x09" + b"\x00" * 8, "length"),  # says 40 bytes, has 12
        (b"\x81\xc9\x00\x01" + b"\x00" * 4, "length"),  # one report block announced, none there
    ],
)
def test_garbage_is_refused_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError) as refused:
        parse(data)
    assert refused.value.reason == reason


def test_a_line_in_a_word_from_loss_jitter_and_round_trip() -> None:
    from bridge.rtp.rtcp import grade

    assert grade(None, None, None) == "good"
    assert grade(0.01, 30.0, 200.0) == "good"  # the limits themselves are still good
    assert grade(0.011, None, None) == "weak"
    assert grade(None, 31.0, None) == "weak"
    assert grade(None, None, 201.0) == "weak"
    assert grade(0.051, 1.0, 10.0) == "poor"
    assert grade(0.0, 61.0, 10.0) == "poor"
    assert grade(0.0, 1.0, 401.0) == "poor"


def test_the_recent_loss_is_the_last_report_interval_s_not_the_whole_call_s() -> None:
    stats = ReceiverStats()
    assert stats.recent_loss is None
    for n in range(100):  # ten lost of the first hundred
        if n % 10 != 9:
            stats.packet(7, n, n * 160, n * 0.02)
    stats.packet(7, 100, 100 * 160, 2.0)
    stats.block(now_s=2.0)
    assert stats.recent_loss == pytest.approx(10 / 101)
    for n in range(101, 201):  # none lost since
        stats.packet(7, n, n * 160, n * 0.02)
    stats.block(now_s=4.0)
    assert stats.recent_loss == 0.0
    assert stats.lost == 10


def test_a_mos_estimate_falls_with_loss_jitter_and_delay() -> None:
    from bridge.rtp.rtcp import mos

    assert mos(None, None, None) is None
    clean = mos(0.0, 1.0, 20.0)
    assert clean is not None
    assert 4.3 <= clean <= 4.45  # G.711 on a clean line: the E-model's ceiling is 4.41
    lossy, jittery, far = mos(0.05, 1.0, 20.0), mos(0.0, 80.0, 20.0), mos(0.0, 1.0, 600.0)
    assert lossy is not None
    assert jittery is not None
    assert far is not None
    assert 3.8 < lossy < 4.0, lossy  # 5 % lost, concealed: R ≈ 77 (G.107 with G.113's Bpl for G.711 with PLC)
    assert jittery < clean
    assert far < jittery
    twenty = mos(0.2, 1.0, 20.0)
    assert twenty is not None
    assert 2.4 < twenty < 2.8, twenty  # one packet in five lost: "poor"
    assert mos(1.0, 500.0, 2000.0) == 1.0
