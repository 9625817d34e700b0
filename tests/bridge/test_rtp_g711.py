"""G.711 by lookup tables (bridge/rtp/g711.py) against an independent implementation of the standard: Python's own
audioop (C, Sun's reference algorithm), on every 16-bit sample and every code."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from bridge.rtp import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # removed in Python 3.13: the test skips there
    audioop = pytest.importorskip("audioop")

PCM = np.arange(-32768, 32768, dtype=np.int16)
CODES = np.arange(256, dtype=np.uint8)


@pytest.mark.parametrize(
    ("encode", "decode", "reference_encode", "reference_decode"),
    [
        (g711.ulaw_encode, g711.ulaw_decode, "lin2ulaw", "ulaw2lin"),
        (g711.alaw_encode, g711.alaw_decode, "lin2alaw", "alaw2lin"),
    ],
)
def test_every_sample_and_every_code_as_the_reference(
    encode: Callable[[npt.NDArray[np.int16]], npt.NDArray[np.uint8]],
    decode: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.int16]],
    reference_encode: str,
    reference_decode: str,
) -> None:
    expected = np.frombuffer(getattr(audioop, reference_encode)(PCM.tobytes(), 2), dtype=np.uint8)
    assert np.array_equal(encode(PCM), expected)
    back = np.frombuffer(getattr(audioop, reference_decode)(CODES.tobytes(), 2), dtype=np.int16)
    assert np.array_equal(decode(CODES), back)


def test_a_tick_of_many_legs_is_one_lookup() -> None:
    frames = np.random.default_rng(7).integers(-32768, 32767, size=(400, 160), dtype=np.int16)
    codes = g711.ulaw_encode(frames)
    assert codes.shape == (400, 160)
    assert np.array_equal(codes[123], g711.ulaw_encode(frames[123]))
    assert np.abs(g711.ulaw_decode(codes).astype(np.int32) - frames).max() < 1100  # the law's largest step
