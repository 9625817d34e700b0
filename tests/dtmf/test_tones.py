from __future__ import annotations

import numpy as np
import pytest

from dtmf.tones import DBM0_AMPLITUDE, DIGITS, ToneSpec, frequencies, generate, synthesize


def tone_level_db(signal: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of one tone, in dB re the 0 dBm0 sine (exact bins: the test lengths hold whole cycles)."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal)))) / (np.hanning(len(signal)).sum() / 2)
    k = round(freq * len(signal) / rate)
    return float(20 * np.log10(spectrum[k - 2 : k + 3].max() / DBM0_AMPLITUDE))


def test_tones_keypad_frequencies() -> None:
    assert frequencies("1") == (697.0, 1209.0)
    assert frequencies("0") == (941.0, 1336.0)
    assert frequencies("#") == (941.0, 1477.0)
    assert frequencies("d") == (941.0, 1633.0)
    with pytest.raises(ValueError, match="not a DTMF digit"):
        frequencies("E")
    with pytest.raises(ValueError, match="not a DTMF digit"):
        frequencies("12")


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_tones_levels_and_twist_exact(rate: int) -> None:
    for digit in DIGITS:
        row, col = frequencies(digit)
        x = synthesize(digit, rate, rate, ToneSpec(level_dbm0=-12.0, twist_db=4.0))  # 1 s
        assert tone_level_db(x, row, rate) == pytest.approx(-10.0, abs=0.05)
        assert tone_level_db(x, col, rate) == pytest.approx(-14.0, abs=0.05)


def test_tones_durations_and_offsets() -> None:
    x = generate("12#", 8000, ToneSpec(on_ms=70, off_ms=130))
    assert len(x) == 3 * 1600
    on = np.abs(x.reshape(3, 1600)).max(axis=1)
    assert (on > 0).all()
    assert not x.reshape(3, 1600)[:, 560:].any()  # silent after 70 ms
    shifted = synthesize("5", 8000, 8000, ToneSpec(row_offset_pct=2.0))
    assert tone_level_db(shifted, 770 * 1.02, 8000) > -11
    assert generate("", 8000).size == 0
