from __future__ import annotations

import numpy as np

from mixer import Mixer, MixerConfig
from mixer.limiter import Limiter, LimiterConfig
from tests.mixer.signals import FRAME, RATE, magnitude_db, tone

# Ten talkers; the measured one at 1 kHz, the others where neither they nor their pairwise sums and differences
# land on 2 or 3 kHz (the harmonics measured).
MEASURED = 1000.0
OTHERS = [310.0, 470.0, 630.0, 790.0, 1270.0, 1430.0, 1590.0, 1750.0, 2210.0]


def loud_room(ticks: int) -> np.ndarray:
    """A listener's output while ten legs each send a full-scale tone, all mixed (top-N of 10)."""
    mixer = Mixer(MixerConfig(top_n=10))
    talkers = [f"t{i}" for i in range(10)]
    for leg in talkers:
        mixer.add_leg(leg, "room")
    mixer.add_leg("listener", "room", listen_only=True)
    heard = []
    for t in range(ticks):
        for leg, freq in zip(talkers, [MEASURED, *OTHERS], strict=True):
            mixer.write(leg, tone(freq, FRAME, 32767, start=t * FRAME))
        heard.append(mixer.tick().frame("listener").astype(np.float64))
    return np.concatenate(heard)


def test_limiter_ten_full_scale_talkers_never_wrap_or_clip() -> None:
    out = loud_room(60)
    truth = np.sum([tone(f, 60 * FRAME, 32767).astype(np.float64) for f in [MEASURED, *OTHERS]], axis=0)
    # No wrap-around: where the true sum is large the output has its sign, and follows it closely.
    big = np.abs(truth) > 20000
    assert np.all(np.sign(out[big]) == np.sign(truth[big]))
    assert np.corrcoef(out, truth)[0, 1] > 0.99
    # No flat tops: never more than 2 consecutive samples at the rails.
    at_rail = np.abs(out) >= 32767
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, at_rail.astype(int), 0])))[::2]
    assert runs.size == 0 or runs.max() <= 2
    assert np.abs(out).max() <= 32767


def test_limiter_keeps_a_tone_clean_under_overload() -> None:
    out = loud_room(60)[FRAME * 10 :]  # after the attack
    fundamental = magnitude_db(out, MEASURED)
    for harmonic in (2, 3):
        assert magnitude_db(out, harmonic * MEASURED) < fundamental - 60, harmonic


def test_limiter_leaves_a_quiet_talker_untouched() -> None:
    mixer = Mixer()
    for leg in ("quiet", "b", "c"):
        mixer.add_leg(leg, "room")
    for t in range(20):
        voice = tone(523.0, FRAME, 3000, start=t * FRAME)
        mixer.write("quiet", voice)
        result = mixer.tick()
        assert np.array_equal(result.frame("b"), voice)
        assert np.array_equal(result.frame("c"), voice)


def test_limiter_gain_moves_smoothly_between_frames() -> None:
    """A loud passage then a quiet one: the applied gain never steps at a frame edge (no zipper noise)."""
    limiter = Limiter(LimiterConfig(), RATE, FRAME)
    gains = np.ones(1, np.float32)
    signal = np.concatenate([np.full(FRAME * 10, 60000.0), np.full(FRAME * 40, 10000.0)]).astype(np.float32)
    applied = []
    for k in range(50):
        frame = signal[k * FRAME : (k + 1) * FRAME].copy()
        out = limiter.process(frame[None, :], gains)[0].astype(np.float64)
        applied.append(out / signal[k * FRAME : (k + 1) * FRAME])
    gain_curve = np.concatenate(applied)
    steps = np.abs(np.diff(gain_curve[FRAME:]))  # after the first attack
    assert steps.max() < 0.002  # per sample: a smooth ramp, not a step
    assert gain_curve[-1] > 0.99  # recovered to unity during the quiet passage
    assert np.abs(gain_curve[FRAME * 2 : FRAME * 10] * 60000 - 32767 * 10 ** (-1 / 20)).max() < 50


def test_limiter_never_exceeds_range_on_random_overloads() -> None:
    limiter = Limiter(LimiterConfig(), RATE, FRAME)
    rng = np.random.default_rng(3)
    gains = np.ones(64, np.float32)
    for _ in range(50):
        mixes = (rng.normal(0, 1, (64, FRAME)) * rng.uniform(100, 200000, (64, 1))).astype(np.float32)
        out = limiter.process(mixes, gains)
        assert out.dtype == np.int16
        assert np.all(gains > 0)
        assert np.all(gains <= 1)
