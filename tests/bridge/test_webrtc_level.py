"""The numpy audio level gives aiortc's own answer (RFC 6465), frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.rtp import compute_audio_level_dbov
from av import AudioFrame

from bridge.webrtc import audio_level_dbov


def frame_of(samples: np.ndarray, layout: str = "mono") -> AudioFrame:
    channels = 2 if layout == "stereo" else 1
    frame = AudioFrame(format="s16", layout=layout, samples=len(samples) // channels)
    frame.planes[0].update(samples.astype("<i2").tobytes())
    frame.sample_rate = 48000
    return frame


@pytest.mark.parametrize("layout", ["mono", "stereo"])
def test_numpy_level_matches_aiortc(layout: str) -> None:
    rng = np.random.default_rng(7)
    cases = [np.zeros(1920), np.full(1920, 32767), np.full(1920, -32768), np.full(1920, 1)]
    cases += [(rng.standard_normal(1920) * scale).clip(-32768, 32767) for scale in (1, 30, 1000, 10000, 40000)]
    for samples in cases:
        frame = frame_of(samples.astype(np.int16), layout)
        assert audio_level_dbov(frame) == compute_audio_level_dbov(frame)
