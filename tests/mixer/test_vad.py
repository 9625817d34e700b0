from __future__ import annotations

import numpy as np
import pytest

from mixer import VadConfig, VoiceActivity
from tests.mixer.signals import FRAME, tone


def run_vad(samples: np.ndarray) -> np.ndarray:
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME)
    vad = VoiceActivity(VadConfig(), 20, 1)
    active = []
    for frame in frames:
        vad.update(frame[None, :])
        active.append(bool(vad.active[0]))
    return np.array(active)


def levels_db(samples: np.ndarray) -> np.ndarray:
    frames = samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    levels: np.ndarray = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2 + 1e-12)
    return levels


@pytest.fixture(scope="module")
def conversation(speech_48k: dict[str, np.ndarray]) -> np.ndarray:
    def gap(seconds: float) -> np.ndarray:
        return np.zeros(int(48000 * seconds), np.int16)

    return np.concatenate([gap(2.0), speech_48k["fr"], gap(1.2), speech_48k["en"], gap(1.5)])


@pytest.mark.parametrize("snr_db", [30, 20, 10, 5])
def test_vad_speech_in_noise(conversation: np.ndarray, snr_db: int) -> None:
    """Against white noise at several S/N: speech that rises above the noise is caught within a frame of its
    start (first syllables kept), nearly every audible speech frame is active, and noise alone is not."""
    clean_db = levels_db(conversation)
    speech_level = 10 * np.log10(np.mean(10 ** (clean_db[clean_db > -60] / 10)))
    noise_db = speech_level - snr_db
    rng = np.random.default_rng(snr_db)
    noise = rng.normal(0, 32768 * 10 ** (noise_db / 20), len(conversation))
    noisy = np.clip(np.rint(conversation + noise), -32768, 32767).astype(np.int16)
    active = run_vad(noisy)

    audible = clean_db > noise_db
    assert (active & audible).sum() / audible.sum() >= 0.97
    near_speech = np.convolve(clean_db > -60, np.ones(31), "same") > 0
    noise_only = ~near_speech
    noise_only[:50] = False  # the first second: the floor is still being learnt
    assert (active & noise_only).sum() <= 0.01 * noise_only.sum()
    onsets = [i for i in range(15, len(audible)) if audible[i] and not audible[i - 15 : i].any()]
    assert len(onsets) >= 2
    for i in onsets:
        assert active[i : i + 2].any(), f"onset at frame {i} missed"


def test_vad_hangover_then_release() -> None:
    silence = np.zeros(48000, np.int16)
    burst = np.concatenate([silence, tone(300, 28800, 8000), silence])  # 0.6 s of "speech" = frames 50 to 79
    active = run_vad(burst)
    assert not active[:50].any()
    assert active[50:80].all()
    assert active[80:95].all()  # then 300 ms of hangover (15 frames)
    assert not active[95:].any()


def test_vad_steady_noise_stops_counting_as_speech() -> None:
    """A fan starting at −35 dBFS: active at first (unknown), then learnt as the floor within ~2 s."""
    rng = np.random.default_rng(0)
    fan = np.rint(rng.normal(0, 32768 * 10 ** (-35 / 20), 48000 * 5)).astype(np.int16)
    active = run_vad(np.concatenate([np.zeros(48000, np.int16), fan]))
    assert not active[150:].any()


def test_vad_quiet_line_noise_never_speech() -> None:
    rng = np.random.default_rng(1)
    hiss = np.rint(rng.normal(0, 32768 * 10 ** (-62 / 20), 48000 * 3)).astype(np.int16)
    assert not run_vad(hiss).any()


def test_vad_many_legs_at_once_equal_one_by_one() -> None:
    rng = np.random.default_rng(5)
    legs = (rng.normal(0, 1, (6, FRAME * 40)) * rng.uniform(10, 5000, (6, 1))).astype(np.int16)
    legs[2, FRAME * 10 : FRAME * 20] += tone(500, FRAME * 10, 9000)
    together = VoiceActivity(VadConfig(), 20, 6)
    history = []
    for t in range(40):
        together.update(legs[:, t * FRAME : (t + 1) * FRAME])
        history.append(together.active.copy())
    for k in range(6):
        assert np.array_equal(np.array(history)[:, k], run_vad(legs[k]))
