"""ITU-T Q.24 receiver requirements, each a test, on every digit where it matters."""

from __future__ import annotations

import numpy as np
import pytest

from dtmf.detector import DtmfDetector
from dtmf.tones import DIGITS, ToneSpec, dbm0_to_amplitude, generate
from tests.dtmf.helpers import alaw_round_trip, burst, detect, digits, mulaw_round_trip, pad, white_noise

ALL = DIGITS
SOME = "0159#D"  # a digit of every row and every column


def one(signal: np.ndarray) -> str:
    return digits(pad(signal))


@pytest.mark.parametrize("offset", [1.5, -1.5])
def test_detector_accepts_frequency_within_1_5_percent(offset: float) -> None:
    for digit in ALL:
        assert one(burst(digit, 60, row_offset_pct=offset)) == digit
        assert one(burst(digit, 60, col_offset_pct=offset)) == digit
        assert one(burst(digit, 60, row_offset_pct=offset, col_offset_pct=offset)) == digit
        assert one(burst(digit, 60, row_offset_pct=offset, col_offset_pct=-offset)) == digit


@pytest.mark.parametrize("offset", [3.5, -3.5, 5.0, -5.0])
def test_detector_rejects_frequency_beyond_3_5_percent(offset: float) -> None:
    for digit in ALL:
        assert one(burst(digit, 60, row_offset_pct=offset)) == ""
        assert one(burst(digit, 60, col_offset_pct=offset)) == ""
        assert one(burst(digit, 60, row_offset_pct=offset, col_offset_pct=offset)) == ""


@pytest.mark.parametrize(("twist", "accepted"), [(8.0, True), (-4.0, True), (10.0, False), (-10.0, False)])
def test_detector_twist(twist: float, accepted: bool) -> None:
    for digit in ALL:
        assert one(burst(digit, 60, twist_db=twist)) == (digit if accepted else "")


@pytest.mark.parametrize(
    ("level", "accepted"), [(0, True), (-10, True), (-20, True), (-30, True), (-55, False), (-60, False)]
)
def test_detector_level(level: float, accepted: bool) -> None:
    for digit in ALL:
        assert one(burst(digit, 60, level_dbm0=level)) == (digit if accepted else "")


@pytest.mark.parametrize("lead", range(0, 40, 3))  # every alignment with the detector's 5 ms hops
def test_detector_durations_and_gaps(lead: int) -> None:
    silence = np.zeros(lead)
    for digit in SOME:
        assert one(np.concatenate([silence, burst(digit, 40)])) == digit, "40 ms must be detected"
        assert one(np.concatenate([silence, burst(digit, 20)])) == "", "20 ms must never be detected"
        interrupted = np.concatenate([silence, burst(digit, 50), np.zeros(80), burst(digit, 50)])
        assert one(interrupted) == digit, "a 10 ms interruption must not split a digit"
        paused = np.concatenate([silence, burst(digit, 50), np.zeros(320), burst(digit, 50)])
        assert one(paused) == digit * 2, "a 40 ms pause must separate two digits"


def test_detector_ten_digits_per_second() -> None:
    sequence = ALL * 3
    assert one(generate(sequence, 8000, ToneSpec(on_ms=50, off_ms=50))) == sequence


def test_detector_reports_start_and_end() -> None:
    events = detect(pad(generate("37", 8000, ToneSpec(on_ms=80, off_ms=120)), ms=100))
    assert [e.digit for e in events] == ["3", "7"]
    for event, start_ms in zip(events, (100, 300), strict=True):
        assert abs(event.start_ms(8000) - start_ms) <= 5
        assert abs((event.end_ms(8000) or 0) - (start_ms + 80)) <= 5


def test_detector_white_noise_15_db_1000_bursts_no_miss() -> None:
    level = -20.0
    sequence = (ALL * 63)[:1000]
    tones = generate(sequence, 8000, ToneSpec(on_ms=50, off_ms=50, level_dbm0=level)).astype(np.float64)
    noise = white_noise(len(tones), level + 3.01 - 15.0, seed=7)  # S/N of both tones together
    assert one(tones + noise) == sequence


@pytest.mark.parametrize("dial_hz", [(440.0,), (425.0,), (350.0, 440.0)])
def test_detector_dial_tone_10_db_above(dial_hz: tuple[float, ...]) -> None:
    """Dial tone (France 440 Hz, Europe 425 Hz, North America 350 + 440 Hz) 10 dB above each DTMF tone, heard
    from 1.5 s before the first digit, as when a caller dials over it."""
    level = -20.0
    tones = generate(ALL * 2, 8000, ToneSpec(on_ms=60, off_ms=60, level_dbm0=level)).astype(np.float64)
    tones = np.concatenate([np.zeros(12000), tones])
    t = np.arange(len(tones)) / 8000
    dial = sum(dbm0_to_amplitude(level + 10) * np.sin(2 * np.pi * f * t) for f in dial_hz)
    assert one(tones + dial) == ALL * 2


def test_detector_third_tone_16_db_below() -> None:
    level = -10.0
    tones = generate(ALL, 8000, ToneSpec(on_ms=60, off_ms=60, level_dbm0=level)).astype(np.float64)
    t = np.arange(len(tones)) / 8000
    for third_hz in range(300, 3500, 100):
        third = dbm0_to_amplitude(level - 16) * np.sin(2 * np.pi * third_hz * t)
        assert one(tones + third) == ALL, third_hz


@pytest.mark.parametrize("codec", [mulaw_round_trip, alaw_round_trip])
@pytest.mark.parametrize("level", [0.0, -10.0, -20.0, -30.0])
def test_detector_through_g711(codec: object, level: float) -> None:
    tones = generate(ALL, 8000, ToneSpec(on_ms=60, off_ms=60, level_dbm0=level))
    assert one(codec(tones)) == ALL  # type: ignore[operator]


def test_detector_packet_loss_concealed() -> None:
    """A 20 ms packet lost inside a digit, concealed by repeating the one before, or by silence."""
    for digit in SOME:
        tone = burst(digit, 120)
        repeated = tone.copy()
        repeated[480:640] = tone[320:480]
        assert one(repeated) == digit
        dropped = tone.copy()
        dropped[480:640] = 0
        assert one(dropped) == digit


@pytest.mark.parametrize(
    ("rate", "frame"), [(8000, 160), (8000, 80), (8000, 333), (16000, 320), (48000, 960), (48000, 441)]
)
def test_detector_any_rate_any_frame_size(rate: int, frame: int) -> None:
    sequence = "159#D*"
    signal = pad(generate(sequence, rate, ToneSpec(on_ms=50, off_ms=50)), rate)
    assert digits(signal, rate, frame) == sequence


def test_detector_many_legs_at_once_equal_one_by_one() -> None:
    streams = ["123", "#0*", "", "9D", "5555", "A"]
    rng = np.random.default_rng(3)
    length = 8000 * 2
    signals = np.zeros((len(streams), length))
    for k, sequence in enumerate(streams):
        tones = generate(sequence, 8000, ToneSpec(on_ms=60, off_ms=70, level_dbm0=-15))
        start = int(rng.integers(0, 2000))
        signals[k, start : start + len(tones)] = tones
        signals[k] += white_noise(length, -45, seed=k)
    batch = np.clip(np.rint(signals), -32768, 32767).astype(np.int16)
    detector = DtmfDetector(8000, legs=len(streams))
    found: list[list[str]] = [[] for _ in streams]
    for i in range(0, length, 160):
        for event in detector.process(batch[:, i : i + 160]).events:
            if event.end is None:
                found[event.leg].append(event.digit)
    assert ["".join(f) for f in found] == streams
    for k, sequence in enumerate(streams):
        assert digits(batch[k]) == sequence


def test_detector_stops_when_disabled() -> None:
    detector = DtmfDetector(8000, legs=2)
    detector.set_enabled(1, False)
    tones = generate("12", 8000, ToneSpec(on_ms=60, off_ms=60))
    events = detector.process(np.stack([tones, tones])).events
    assert {e.leg for e in events} == {0}


def test_detector_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 8 kHz"):
        DtmfDetector(4000)
    with pytest.raises(ValueError, match="expected 2 legs"):
        DtmfDetector(8000, legs=2).process(np.zeros((3, 160), np.int16))
