"""RTP packets (RFC 3550 §5.1): read from a datagram with every field checked, and written.

A datagram that is not an RTP packet this bridge can use raises :class:`RtpError` with a short reason (counted by
the caller, never a traceback per packet): version not 2, shorter than its header, CSRCs, extension or padding that
overrun it, padding of zero. RTCP on the same port (RFC 5761: payload types 64–95 with the marker bit) is told apart
by :func:`is_rtcp`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """Not an RTP packet to use; ``reason`` is a short word for counting."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RtpPacket(NamedTuple):
    payload_type: int
    marker: bool
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


def is_rtcp(data: bytes) -> bool:
    """An RTCP packet multiplexed on the RTP port (RFC 5761 §4: second byte 192–223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse(data: bytes) -> RtpPacket:
    if len(data) < HEADER.size:
        raise RtpError("short")
    first, second, seq, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RtpError("version")
    offset = HEADER.size + 4 * (first & 0x0F)  # CSRCs: read past, a mixer upstream is none of our business
    if first & 0x10:  # a header extension: its length in 32-bit words after its own 4 bytes
        if len(data) < offset + 4:
            raise RtpError("extension")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20:
        if end <= offset:
            raise RtpError("padding")
        padding = data[-1]
        if padding == 0 or end - padding < offset:
            raise RtpError("padding")
        end -= padding
    if offset > end:
        raise RtpError("short")
    return RtpPacket(second & 0x7F, bool(second & 0x80), seq, timestamp, ssrc, data[offset:end])


def build(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return (
        HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload
    )
