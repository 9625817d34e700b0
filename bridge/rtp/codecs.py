"""The audio codecs of a phone call: what the SDP names, the RTP clock, and one coder per call.

G.711 (PCMU, PCMA) is stateless, a table lookup (bridge/rtp/g711.py). G.722 is wideband (16 kHz audio, 64 kbit/s)
ADPCM with state on each side, so each call has its own coder: Sippy's libg722 (PyPI ``G722``, the ITU-checked
code of spandsp), measured at 17 µs to encode and 12 µs to decode a 20 ms frame here, against 22 and 11 µs for
Debian's libspandsp through ctypes. Its RTP clock is 8000 Hz for 16 kHz audio, an error of RFC 1890 that RFC 3551
§4.5.2 keeps: a packet of 320 samples advances the timestamp by 160.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bridge.rtp import g711


class Coder(Protocol):
    def encode(self, samples: npt.NDArray[np.int16]) -> bytes: ...

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]: ...


@dataclass(frozen=True)
class Codec:
    name: str  # as in an SDP rtpmap
    payload_type: int  # its static number (dynamic ones are the offer's, bridge/sip/sdp.py)
    rate_hz: int  # the audio's sample rate: what the engine mixes this call at
    clock_hz: int  # the RTP timestamp's rate, and the SDP rtpmap's
    coder: Callable[[], Coder]  # a new one per call
    channels: int = 1  # as the rtpmap says it (Opus: always 2, RFC 7587 §7, though what it carries is mono)


class _G711:
    def __init__(
        self,
        encode: Callable[[npt.NDArray[np.int16]], npt.NDArray[np.uint8]],
        decode: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.int16]],
    ) -> None:
        self._encode, self._decode = encode, decode

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        return self._encode(samples).tobytes()

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        return self._decode(np.frombuffer(payload, dtype=np.uint8))


_ULAW = _G711(g711.ulaw_encode, g711.ulaw_decode)
_ALAW = _G711(g711.alaw_encode, g711.alaw_decode)


class _G722:
    def __init__(self) -> None:
        from G722 import G722

        self._encoder = G722(16000, 64000, use_numpy=True)
        self._decoder = G722(16000, 64000, use_numpy=True)

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        return bytes(self._encoder.encode(samples))

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        return np.asarray(self._decoder.decode(payload), dtype=np.int16)


class _Opus:
    """Opus over SIP (RFC 7587): 48 kHz, what softphones and some trunks offer first. The bridge's own encoder
    for browsers (bridge/opus.py: libopus through PyAV, mono), and libopus's decoder, one each per call."""

    def __init__(self) -> None:
        import av

        from bridge.opus import OpusEncoder

        self._encoder = OpusEncoder()
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.sample_rate = 48000
        self._decoder.layout = "mono"
        self._packet = av.Packet

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        return self._encoder.encode(samples)

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        try:
            frames = self._decoder.decode(self._packet(payload))
        except ValueError:  # PyAV's errors (InvalidDataError…) derive from ValueError: a damaged packet
            return np.zeros(0, np.int16)
        parts = [np.asarray(f.to_ndarray(), dtype=np.int16).reshape(-1) for f in frames]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


PCMU = Codec("PCMU", 0, 8000, 8000, lambda: _ULAW)
PCMA = Codec("PCMA", 8, 8000, 8000, lambda: _ALAW)
G722 = Codec("G722", 9, 16000, 8000, _G722)
OPUS = Codec("opus", 111, 48000, 48000, _Opus, channels=2)
