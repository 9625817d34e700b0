from __future__ import annotations

import numpy as np
import pytest

from mixer import Resampler
from tests.mixer.signals import magnitude_db, tone

PAIRS = [(8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000), (48000, 48000)]


def sweep(rate: int, seconds: float, f0: float, f1: float, amplitude: float = 12000.0) -> np.ndarray:
    """A logarithmic sweep as an analytic function of time, so it can be evaluated at any rate and delay."""
    t = np.arange(int(rate * seconds)) / rate
    return sweep_at(t, seconds, f0, f1) * amplitude


def sweep_at(t: np.ndarray, seconds: float, f0: float, f1: float) -> np.ndarray:
    k = np.log(f1 / f0) / seconds
    wave: np.ndarray = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    return wave


@pytest.mark.parametrize(("rate_in", "rate_out"), PAIRS)
def test_resample_streaming_equals_one_pass(rate_in: int, rate_out: int) -> None:
    x = np.random.default_rng(1).normal(0, 4000, rate_in).astype(np.int16)
    frame = rate_in // 50
    streamed = Resampler(rate_in, rate_out)
    pieces = [streamed.process(x[i : i + frame]) for i in range(0, len(x), frame)]
    whole = Resampler(rate_in, rate_out).process(x)
    assert np.array_equal(np.concatenate(pieces), whole)
    assert len(whole) == len(x) * rate_out // rate_in


@pytest.mark.parametrize(("rate_in", "rate_out", "top_hz"), [(8000, 48000, 3300), (16000, 48000, 6800)])
def test_resample_sweep_has_no_clicks_and_the_reported_delay(rate_in: int, rate_out: int, top_hz: float) -> None:
    """A sweep fed in 20 ms frames comes out as the same sweep at the new rate, delayed by ``delay_s``: the error
    is small everywhere, frame edges included (a click would show there)."""
    seconds = 2.0
    resampler = Resampler(rate_in, rate_out)
    x = np.rint(sweep(rate_in, seconds, 100.0, top_hz)).astype(np.int16)
    frame = rate_in // 50
    y = np.concatenate([resampler.process(x[i : i + frame]) for i in range(0, len(x), frame)]).astype(np.float64)
    t = np.arange(len(y)) / rate_out - resampler.delay_s
    ideal = np.where(t >= 0, sweep_at(np.maximum(t, 0), seconds, 100.0, top_hz) * 12000.0, 0.0)
    settle = int(0.05 * rate_out)
    error = (y - ideal)[settle:]
    worst_db = 20 * np.log10(np.abs(error).max() / 12000.0)
    # Measured −56 dB; losing the filter history at each frame edge gives +1 dB (a click every 20 ms).
    assert worst_db < -50, worst_db


@pytest.mark.parametrize(("rate_in", "rate_out"), [(48000, 8000), (48000, 16000)])
def test_resample_rejects_aliases(rate_in: int, rate_out: int) -> None:
    """Above the new Nyquist rate content is removed (≥ 55 dB down), not folded into the speech band."""
    nyquist = rate_out / 2
    alias_source = rate_out - 1000.0  # would fold to 1 kHz
    x = tone(alias_source, rate_in, 30000, rate=rate_in)
    y = Resampler(rate_in, rate_out).process(x)[rate_out // 10 :]
    assert magnitude_db(y, 1000.0, rate=rate_out) < -55
    passband = Resampler(rate_in, rate_out).process(tone(nyquist * 0.8, rate_in, 30000, rate=rate_in))
    assert (
        abs(magnitude_db(passband[rate_out // 10 :], nyquist * 0.8, rate=rate_out) - 20 * np.log10(30000 / 32768)) < 0.5
    )


def test_resample_batch_of_legs_equals_each_leg() -> None:
    rng = np.random.default_rng(2)
    legs = rng.normal(0, 3000, (5, 1600)).astype(np.int16)
    batch = Resampler(8000, 48000, legs=5)
    out = np.concatenate([batch.process(legs[:, i : i + 160]) for i in range(0, 1600, 160)], axis=1)
    for k in range(5):
        alone = Resampler(8000, 48000)
        single = np.concatenate([alone.process(legs[k, i : i + 160]) for i in range(0, 1600, 160)])
        assert np.array_equal(out[k], single)


def test_resample_delays_reported() -> None:
    assert Resampler(8000, 48000).delay_ms < 2.0
    assert Resampler(16000, 48000).delay_ms < 1.5
    assert Resampler(48000, 48000).delay_ms == 0.0


def test_resample_bad_input() -> None:
    with pytest.raises(ValueError, match="unsupported rate pair"):
        Resampler(44100, 48000)
    with pytest.raises(ValueError, match="unsupported rate pair"):
        Resampler(12000, 48000)
    with pytest.raises(ValueError, match=r"expected \(1, k·6\) samples"):
        Resampler(48000, 8000).process(np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="legs must be at least 1"):
        Resampler(8000, 48000, legs=0)


def test_resample_bank_rows_equal_separate_resamplers() -> None:
    from mixer.resample import ResamplerBank

    rng = np.random.default_rng(5)
    streams = rng.normal(0, 3000, (4, 160 * 20)).astype(np.int16)
    for rate_in, rate_out, frame in ((8000, 48000, 160), (48000, 8000, 960)):
        data = streams if rate_in == 8000 else np.repeat(streams, 6, axis=1)
        bank = ResamplerBank(rate_in, rate_out, capacity=8)
        singles = [Resampler(rate_in, rate_out) for _ in range(4)]
        rows = np.array([6, 1, 3, 0])
        for i in range(0, data.shape[1], frame):
            chunk = data[:, i : i + frame]
            together = bank.process(chunk[[0, 2]], rows[[0, 2]])  # rows need not all be there every time
            together2 = bank.process(chunk[[1, 3]], rows[[1, 3]])
            for k, out in ((0, together[0]), (2, together[1]), (1, together2[0]), (3, together2[1])):
                assert np.array_equal(out, singles[k].process(chunk[k]))
