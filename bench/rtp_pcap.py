"""A pcap of one caller's RTP for SIPp's play_pcap_audio: PCMU audio with RFC 4733 digits in the same stream
(one SSRC, continuous sequence numbers and timestamps — SIPp's bundled DTMF captures do not work: source port 0 and
another SSRC)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dtmf.rfc4733 import TelephoneEvent, event_code

FRAME = 160  # 20 ms at 8 kHz
PT_PCMU, PT_PCMA, PT_EVENT = 0, 8, 101


def mulaw(samples: npt.NDArray[np.int16]) -> bytes:
    """G.711 μ-law encoding (the segment/bias algorithm of the standard)."""
    x = samples.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    code = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return bytes(code.astype(np.uint8))


def alaw(samples: npt.NDArray[np.int16]) -> bytes:
    """G.711 A-law encoding (13-bit magnitude, a segment by its highest bit, every other bit inverted)."""
    x = samples.astype(np.int32) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    magnitude = np.minimum(np.where(x >= 0, x, -x - 1), 4095)
    exponent = np.where(magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> np.maximum(exponent, 1)) & 0x0F
    return bytes((((exponent << 4) | mantissa) ^ mask).astype(np.uint8))


def _checksum(header: bytes) -> int:
    total = int(sum(struct.unpack("!10H", header)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _frame(payload: bytes, src_port: int = 16000, dst_port: int = 6000) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + udp


def write_call_pcap(
    path: Path, lead_s: float, digits: str, audio: npt.NDArray[np.int16], codec: str = "PCMU", drop_every: int = 0
) -> float:
    """Silence for ``lead_s``, then ``digits`` as RFC 4733 events (100 ms each, 100 ms apart), then ``audio``, in
    ``codec`` (PCMU or PCMA); with ``drop_every`` n, every n-th packet of ``audio`` is lost on the way (its sequence
    number skipped, as a network loses it). Returns the duration in seconds."""
    payload_type, encode = {"PCMU": (PT_PCMU, mulaw), "PCMA": (PT_PCMA, alaw)}[codec]
    packets: list[tuple[int, bytes]] = []  # (time in samples, RTP packet)
    ssrc, seq, clock = 0x5A55C0DE, 1000, 0

    def rtp(pt: int, timestamp: int, payload: bytes, marker: bool = False, lost: bool = False) -> None:
        nonlocal seq
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc)
        if not lost:
            packets.append((clock, header + payload))
        seq += 1

    def audio_frames(samples: npt.NDArray[np.int16], drop_every: int = 0) -> None:
        nonlocal clock
        for n, i in enumerate(range(0, len(samples) - FRAME + 1, FRAME)):
            lost = drop_every > 0 and n % drop_every == drop_every - 1
            rtp(payload_type, clock, encode(samples[i : i + FRAME]), lost=lost)
            clock += FRAME

    audio_frames(np.zeros(int(lead_s * 8000), np.int16))
    for digit in digits:
        start = clock
        for k in range(1, 6):  # 100 ms of updates, every 20 ms
            rtp(PT_EVENT, start, bytes(TelephoneEvent(event_code(digit), False, 10, FRAME * k)), marker=k == 1)
            clock += FRAME
        for _ in range(3):  # the end, three times (RFC 4733 §2.5.1.4)
            rtp(PT_EVENT, start, bytes(TelephoneEvent(event_code(digit), True, 10, FRAME * 5)))
        audio_frames(np.zeros(FRAME * 5, np.int16))
    audio_frames(audio, drop_every)

    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for at, packet in packets:
            frame = _frame(packet)
            seconds, micro = divmod(at * 125, 1_000_000)  # 8 kHz: 125 µs per sample
            out.write(struct.pack("<IIII", seconds, micro, len(frame), len(frame)) + frame)
    return clock / 8000
