"""Test signals: tones on exact FFT bins, levels, spectra."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 48000
FRAME = 960


def tone(freq_hz: float, samples: int, amplitude: float, start: int = 0, rate: int = RATE) -> npt.NDArray[np.int16]:
    n = np.arange(start, start + samples)
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * n / rate)).astype(np.int16)


def magnitude_db(signal: npt.NDArray[np.generic], freq_hz: float, rate: int = RATE) -> float:
    """Level of one frequency in dB re full-scale sine, with a Hann window (the tone needs several cycles)."""
    x = np.asarray(signal, dtype=np.float64)
    window = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2) / 32768.0
    bin_hz = rate / len(x)
    k = round(freq_hz / bin_hz)
    peak = spectrum[max(k - 1, 0) : k + 2].max()
    return float(20 * np.log10(max(peak, 1e-12)))
