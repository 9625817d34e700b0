"""Keypad tones never reach the room; speech and music are not taken for digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.talkoff import count_digits, music, speech, with_noise
from dtmf.detector import DtmfDetector
from dtmf.tones import ToneSpec, generate

RATE = 8000


def test_removal_mutes_digits_with_margin_and_keeps_the_rest() -> None:
    rng = np.random.default_rng(4)
    voice = (rng.normal(0, 2000, RATE * 2)).astype(np.int16)  # a talker, throughout
    keys = generate("47#", RATE, ToneSpec(on_ms=80, off_ms=300, level_dbm0=-5))
    start = RATE // 2
    signal = voice.astype(np.int32)
    signal[start : start + len(keys)] += keys
    signal16 = np.clip(signal, -32768, 32767).astype(np.int16)
    detector = DtmfDetector(RATE)
    cleaned, events = [], []
    for i in range(0, len(signal16), 160):
        output = detector.process(signal16[i : i + 160], clean=True)
        assert output.audio is not None
        cleaned.append(output.audio[0])
        events += output.events
    out = np.concatenate(cleaned)
    delay = detector.delay_samples
    assert delay == RATE * 40 // 1000
    heard = out[delay:]  # back in step with the input
    assert [e.digit for e in events if e.end is None] == ["4", "7", "#"]
    on, off = round(0.08 * RATE), round(0.3 * RATE)
    for k in range(3):
        a = start + k * (on + off)
        assert not heard[a - 80 : a + on + 80].any(), f"digit {k} heard"  # muted, 10 ms either side at least
    between = slice(start + on + 240, start + on + off - 240)  # the talker between two digits: untouched
    assert np.array_equal(heard[between], voice[between])
    assert np.array_equal(heard[: start - 400], voice[: start - 400])


@pytest.fixture(scope="module")
def speech_8k(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    return speech(Path(tmp_path_factory.mktemp("talkoff")))


@pytest.mark.parametrize("snr_db", [None, 20.0, 10.0])
def test_talkoff_speech_no_false_digit(speech_8k: dict[str, np.ndarray], snr_db: float | None) -> None:
    for language, clean in speech_8k.items():
        signal = clean if snr_db is None else with_noise(clean, snr_db, seed=1)
        assert count_digits(signal) == [], language


@pytest.mark.e2e
def test_talkoff_music_below_five_per_hour() -> None:
    """Ten minutes of generated chords and melodies: a single false digit would already be 6 per hour."""
    found = count_digits(music(600, seed=1000))
    assert len(found) <= 0, found
