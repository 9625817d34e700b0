"""ITU-T G.711 μ-law (PCMU) and A-law (PCMA) by lookup tables: a frame of any number of legs is one numpy index.

The tables are built once from the standard's segment algorithm (as in Sun's reference g711.c, which every phone and
Python's own audioop implement): encoding indexes a 65,536-entry table by the 16-bit sample, decoding a 256-entry
one by the code. A 20 ms frame of 160 samples costs two array lookups, not a loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2  # 14 bits, as the reference does
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(pcm < 0, -pcm, pcm), 8159) + (_BIAS >> 2)
    ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(ends, magnitude)  # the first segment whose end is at least the magnitude
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    out = (code ^ mask) & 0xFF
    return np.roll(out.astype(np.uint8), -32768)  # indexed by the sample's bits as uint16: 0..32767, -32768..-1


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3  # 13 bits
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    ends = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    segment = np.searchsorted(ends, magnitude)
    shifted = np.where(segment < 2, magnitude >> 1, magnitude >> segment)
    code = (np.minimum(segment, 7) << 4) | (shifted & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    out = (code ^ mask) & 0xFF
    return np.roll(out.astype(np.uint8), -32768)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    t = np.where(segment == 0, t + 8, np.where(segment == 1, t + 0x108, (t + 0x108) << np.maximum(segment - 1, 0)))
    return np.where(code & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE = _ulaw_encode_table()
ULAW_DECODE = _ulaw_decode_table()
ALAW_ENCODE = _alaw_encode_table()
ALAW_DECODE = _alaw_decode_table()


def ulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """μ-law codes of 16-bit samples (any shape: one frame, or a tick's frames of many legs)."""
    return ULAW_ENCODE[samples.view(np.uint16)]


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    return ULAW_DECODE[codes]


def alaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    return ALAW_ENCODE[samples.view(np.uint16)]


def alaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    return ALAW_DECODE[codes]
