"""Speech made with espeak-ng (French and English voices), resampled to 48 kHz with sox, once per session."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.tools import require

SENTENCES = {
    "fr": "Bonjour madame, je suis le docteur Martin. Comment allez-vous aujourd'hui ? "
    "Avez-vous bien pris votre traitement cette semaine ?",
    "en": "Good morning. Please describe your symptoms, and tell me when they started.",
}


@pytest.fixture(scope="session")
def speech_48k(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Each language's sentence as int16 samples at 48 kHz."""
    folder = tmp_path_factory.mktemp("speech")
    espeak, sox = require("espeak-ng"), require("sox")
    out = {}
    for language, text in SENTENCES.items():
        raw, resampled = folder / f"{language}.wav", folder / f"{language}48.wav"
        subprocess.run([espeak, "-v", language, "-w", str(raw), text], check=True, timeout=60)
        subprocess.run([sox, str(raw), "-r", "48000", str(resampled)], check=True, timeout=60)
        out[language] = read_wav(resampled)
    return out


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1
        assert w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()
