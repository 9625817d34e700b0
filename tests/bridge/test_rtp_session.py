"""A call's RTP on the bridge's loop (bridge/rtp/session.py), between real UDP sockets on loopback: audio both
ways through the codec and the jitter buffer; symmetric RTP (the answer goes where the packets come from, not where
the SDP said); another source refused while the first talks; garbage, unknown payload types and RTCP garbage
counted by reason, the call unaffected; RFC 4733 events handed on; reports give loss and round trip; G.722's
wideband frames on its 8 kHz RTP clock."""

from __future__ import annotations

import asyncio
import itertools
import socket

import numpy as np
import pytest

from bridge.rtp.codecs import G722, PCMA, PCMU
from bridge.rtp.packet import build, parse
from bridge.rtp.session import RtpLeg, RtpSession, open_session

PORTS = range(40000, 40400)
FRAME = 160


def tone(n: int, freq: float = 440.0) -> np.ndarray:
    t = (np.arange(FRAME) + n * FRAME) / 8000
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def settle() -> None:
    await asyncio.sleep(0.02)


def test_audio_both_ways_and_reports_between_two_sessions() -> None:
    async def scenario() -> tuple[RtpSession, RtpSession, list[np.ndarray]]:
        a = await open_session("127.0.0.1", PORTS, PCMA, None)
        b = await open_session("127.0.0.1", PORTS, PCMA, ("127.0.0.1", a.local_port))
        heard: list[np.ndarray] = []
        for n in range(30):
            b.send(tone(n))
            if n == 0:
                await settle()  # a latches to b, then answers it
            a.send(tone(n, 1000.0))
            await settle()
            got = RtpLeg("a", a).read()
            if got is not None:
                heard.append(got)
        b.send_report()
        await settle()
        a.send_report()
        await settle()
        a.close()
        b.close()
        return a, b, heard

    a, b, heard = asyncio.run(scenario())
    assert a.remote == ("127.0.0.1", b.local_port)
    assert a.received_packets == 30
    assert b.received_packets == 30
    assert len(heard) >= 25
    # what a heard last is one of b's frames (A-law's error is a few % of the signal)
    assert min(int(np.abs(heard[-1].astype(np.int32) - tone(n)).max()) for n in range(30)) < 600
    assert b.quality["loss"] == 0.0
    assert b.quality["rtt_ms"] is not None
    assert 0 <= b.quality["rtt_ms"] < 200
    assert a.errors == {}
    assert b.errors == {}


def test_symmetric_rtp_answers_the_real_source_and_refuses_another_while_it_talks() -> None:
    async def scenario() -> tuple[RtpSession, list[int], list[str]]:
        said_port = 9  # the SDP said port 9 (discard); the phone's packets come from elsewhere (its NAT)
        session = await open_session("127.0.0.1", PORTS, PCMU, ("127.0.0.1", said_port))
        phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        phone.bind(("127.0.0.1", 0))
        phone.setblocking(False)
        intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        intruder.bind(("127.0.0.1", 0))
        target = ("127.0.0.1", session.local_port)
        events: list[str] = []
        session.on_event = lambda payload, ts: events.append(payload.hex())
        for n in range(5):
            phone.sendto(build(0, n, n * FRAME, 77, b"\xff" * FRAME), target)
        intruder.sendto(build(0, 1, 0, 99, b"\x00" * FRAME), target)  # another source, while the phone talks
        phone.sendto(b"\x00" + b"garbage" * 3, target)
        phone.sendto(build(18, 9, 0, 77, b"\x00" * 20), target)  # G.729, not negotiated
        phone.sendto(build(101, 10, 800, 77, bytes([1, 0x8A, 0, 160])), target)  # "1", end
        phone.sendto(bytes([0x80, 200, 0, 1, 1, 2, 3]), target)  # RTCP garbage on the RTP port
        await settle()
        session.send(np.zeros(FRAME, dtype=np.int16))
        await settle()
        answered = []
        try:
            while True:
                answered.append(parse(phone.recv(2048)).payload_type)
        except BlockingIOError:
            pass
        phone.close()
        intruder.close()
        session.close()
        return session, answered, events

    session, answered, events = asyncio.run(scenario())
    assert answered == [0], "the answer did not go where the phone's packets came from"
    assert session.errors == {"foreign-source": 1, "version": 1, "payload-type": 1, "rtcp-short": 1}
    assert events == ["018a00a0"]
    assert session.received_packets == 6


def test_g722_sends_16_khz_frames_on_an_8_khz_rtp_clock_and_plays_them_back() -> None:
    """G.722: 320 samples (20 ms at 16 kHz) make a packet of 160 bytes whose timestamp advances by 160 (RFC 3551
    §4.5.2); the other side's jitter buffer puts them back in order as 16 kHz frames of the same tone."""
    wide = (8000 * np.sin(2 * np.pi * 5000 * np.arange(320 * 40) / 16000)).astype(np.int16)

    async def scenario() -> tuple[list[bytes], list[np.ndarray]]:
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind(("127.0.0.1", 0))
        raw.setblocking(False)
        a = await open_session("127.0.0.1", PORTS, G722, raw.getsockname())
        b = await open_session("127.0.0.1", PORTS, G722, ("127.0.0.1", a.local_port))
        sent: list[bytes] = []
        heard: list[np.ndarray] = []
        for n in range(40):
            a.send(wide[n * 320 : (n + 1) * 320])
            await settle()
            sent.append(raw.recv(2048))
            raw.sendto(sent[-1], ("127.0.0.1", b.local_port))  # on to b
            await settle()
            got = RtpLeg("b", b).read()
            if got is not None:
                heard.append(got)
        a.close()
        b.close()
        raw.close()
        return sent, heard

    sent, heard = asyncio.run(scenario())
    packets = [parse(p) for p in sent]
    assert {p.payload_type for p in packets} == {9}
    assert {len(p.payload) for p in packets} == {160}
    assert {(q.timestamp - p.timestamp) & 0xFFFFFFFF for p, q in itertools.pairwise(packets)} == {160}
    assert len(heard) >= 30
    assert {len(f) for f in heard} == {320}
    last = np.concatenate(heard[-10:]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(last))
    assert abs(np.argmax(spectrum) * 16000 / len(last) - 5000) < 50, "the 5 kHz tone did not come back"


def test_digits_go_out_as_rfc_4733_events_in_place_of_the_audio() -> None:
    """RFC 4733 §2.5.1: one packet a frame with the event's first timestamp and a growing duration, the marker on
    the first, the end three times with the same duration, audio in the pause, then the next key."""
    from dtmf.rfc4733 import TelephoneEvent

    async def scenario() -> list[bytes]:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind(("127.0.0.1", 0))
        receiver.setblocking(False)
        session = await open_session("127.0.0.1", PORTS, PCMU, receiver.getsockname(), event_payload_type=101)
        session.send_digits("5#", duration_ms=100, pause_ms=60)
        for n in range(20):
            session.send(tone(n))
        await settle()
        packets = []
        with contextlib.suppress(BlockingIOError):
            while True:
                packets.append(receiver.recv(2048))
        session.close()
        receiver.close()
        return packets

    import contextlib

    packets = [parse(p) for p in asyncio.run(scenario())]
    kinds = ["event" if p.payload_type == 101 else "audio" for p in packets]
    events = [(p, TelephoneEvent.parse(p.payload)) for p in packets if p.payload_type == 101]
    first = [(p, e) for p, e in events if e.event == 5]
    second = [(p, e) for p, e in events if e.event == 11]  # '#'
    # 100 ms = 5 frames of 160: durations 160 … 800, then the end three times at 800
    assert [e.duration for _, e in first] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert [e.end for _, e in first] == [False] * 5 + [True] * 3
    assert {p.timestamp for p, _ in first} == {first[0][0].timestamp}  # the event's first timestamp throughout
    assert [p.marker for p, _ in first] == [True] + [False] * 7
    assert [e.volume for _, e in first] == [10] * 8
    assert len(second) == 8
    assert second[0][0].marker
    assert second[0][0].timestamp - first[0][0].timestamp == (5 + 3) * 160  # 5 frames of tone, 3 of pause
    assert kinds[:8] == ["event"] * 8
    assert kinds[8:11] == ["audio"] * 3  # 60 ms of pause: audio again
    assert kinds[11:19] == ["event"] * 8
    assert kinds[19:] == ["audio"] * (len(kinds) - 19)
    seqs = [p.seq for p in packets]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), "every packet its own sequence number"


def test_digits_refused_whole_when_one_is_not_a_digit_or_no_events_were_agreed() -> None:

    async def scenario() -> None:
        session = await open_session("127.0.0.1", PORTS, PCMU, ("127.0.0.1", 9), event_payload_type=101)
        with pytest.raises(ValueError, match="not a DTMF digit"):
            session.send_digits("12x")
        assert not session._events  # nothing of it queued
        session.close()
        plain = await open_session("127.0.0.1", PORTS, PCMU, ("127.0.0.1", 9), event_payload_type=None)
        with pytest.raises(ValueError, match="telephone-event"):
            plain.send_digits("1")
        plain.close()

    asyncio.run(scenario())


def test_a_hub_reads_every_session_at_its_sweep_and_a_flooding_caller_gets_no_more_than_its_rounds() -> None:
    """Under the SIP gateway the packets wait in their sockets until the tick's sweep: nothing is read before it;
    then each session gets what came for it, the jitter measured on the kernel's arrival times (not the sweep's);
    a caller with 200 packets waiting gets ``rounds`` of them read a sweep, and the quiet callers all of theirs."""
    from bridge.rtp.session import RtpHub

    async def scenario() -> tuple[list[RtpSession], list[int], list[int], list[float], RtpHub]:
        hub = RtpHub(rounds=4)
        sessions = [await open_session("127.0.0.1", PORTS, PCMU, None, hub=hub) for _ in range(3)]
        phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        phone.bind(("127.0.0.1", 0))
        for n in range(2):  # two packets each, 60 ms apart (as their timestamps say)
            for s in sessions:
                phone.sendto(build(0, n, n * 3 * FRAME, 7, b"\xff" * FRAME), ("127.0.0.1", s.local_port))
            await asyncio.sleep(0.06)
        await asyncio.sleep(0.1)  # late for their time: the sweep's time is not the arrival's
        before = [s.received_packets for s in sessions]
        reads = [hub.sweep()]
        jitter = [s.receiver.jitter for s in sessions]
        flooded = sessions[0]
        for n in range(200):
            phone.sendto(build(0, 2 + n, (6 + n) * FRAME, 7, b"\xff" * FRAME), ("127.0.0.1", flooded.local_port))
        phone.sendto(build(0, 2, 6 * FRAME, 7, b"\xff" * FRAME), ("127.0.0.1", sessions[1].local_port))
        await asyncio.sleep(0.05)
        reads.append(hub.sweep())
        for s in sessions:
            s.close()
        phone.close()
        return sessions, before, reads, jitter, hub

    sessions, before, reads, jitter, hub = asyncio.run(scenario())
    assert before == [0, 0, 0], "packets were read before the sweep"
    assert reads == [6, 4 + 1]
    assert [s.received_packets for s in sessions] == [2 + 4, 3, 2]
    # read together, the two would differ by 480 (60 ms): a jitter of 30 after them; as they came, under 16
    assert all(j < 16 for j in jitter), f"the jitter counted the wait for the sweep: {jitter}"
    assert len(hub) == 0, "closed sessions stay in the hub"
    assert all(s.errors == {} for s in sessions)


def test_a_packet_the_session_fails_on_is_counted_and_the_sweep_goes_on() -> None:
    from bridge.rtp.session import RtpHub

    async def scenario() -> tuple[list[RtpSession], int]:
        hub = RtpHub()
        sessions = [await open_session("127.0.0.1", PORTS, PCMU, None, hub=hub, event_payload_type=101)
                    for _ in range(2)]  # fmt: skip

        def broken(payload: bytes, timestamp: int) -> None:
            raise RuntimeError("a bug in the digit handler")

        sessions[0].on_event = broken
        phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        phone.bind(("127.0.0.1", 0))
        for s in sessions:
            phone.sendto(build(101, 1, 0, 7, bytes([1, 0x8A, 0, 160])), ("127.0.0.1", s.local_port))
            phone.sendto(build(0, 2, 160, 7, b"\xff" * FRAME), ("127.0.0.1", s.local_port))
        await asyncio.sleep(0.05)
        read = hub.sweep()
        for s in sessions:
            s.close()
        phone.close()
        return sessions, read

    sessions, read = asyncio.run(scenario())
    assert read == 4
    assert sessions[0].errors == {"internal": 1}
    assert sessions[0].received_packets == 1  # the audio after it
    assert sessions[1].received_packets == 2


def test_a_lossy_caller_s_line_is_assessed_poor_once_and_the_change_told() -> None:
    """Every fifth packet lost: 20 % in the report's interval, a poor line; told once, not at every assessment;
    the figures say the loss and what came."""

    async def scenario() -> tuple[RtpSession, list[str], dict[str, object]]:
        session = await open_session("127.0.0.1", PORTS, PCMU, ("127.0.0.1", 9))
        told: list[str] = []
        session.on_line = told.append
        assert session.line is None
        for n in range(50):
            if n % 5 != 4:
                session.datagram_received(build(0, n, n * FRAME, 7, b"\xff" * FRAME), ("127.0.0.1", 5004), n * 0.02)
        session.datagram_received(build(0, 50, 50 * FRAME, 7, b"\xff" * FRAME), ("127.0.0.1", 5004), 1.0)
        session.send_report()
        session.assess_line()
        session.assess_line()
        figures = session.network()
        session.close()
        return session, told, figures

    session, told, figures = asyncio.run(scenario())
    assert told == ["poor"]
    assert session.line == "poor"
    assert figures["loss_in"] == pytest.approx(10 / 51, abs=0.001)
    assert figures["lost"] == 10
    assert figures["received"] == 41
    assert figures["codec"] == "PCMU"
    assert figures["line"] == "poor"
