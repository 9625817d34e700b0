from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from bridge.prompts import MissingPrompt, PromptLibrary
from bridge.prompts.library import NAMES
from config import Language, load_settings
from mixer.frame import rms_dbfs


@pytest.mark.parametrize("language", list(Language))
def test_prompts_every_prompt_exists_and_sounds(language: Language) -> None:
    library = PromptLibrary()
    for name in sorted(NAMES) + [f"number_{n}" for n in range(100)]:
        samples = library.get(language, name, 8000)
        assert 0.2 < len(samples) / 8000 < 12, name
        assert rms_dbfs(samples) > -35, name
        assert np.abs(samples.astype(np.int32)).max() < 32767, name


def test_prompts_rates_and_cache() -> None:
    library = PromptLibrary()
    narrow = library.get(Language.FR, "goodbye", 8000)
    wide = library.get(Language.FR, "goodbye", 48000)
    assert abs(len(wide) - 6 * len(narrow)) <= 6
    assert library.get(Language.FR, "goodbye", 8000) is narrow
    assert not narrow.flags.writeable
    count = library.sequence(Language.EN, ["number_12", "participants"], 16000)
    assert len(count) > len(library.get(Language.EN, "participants", 16000))


def test_prompts_preloaded_at_a_rate_are_the_ones_played_later() -> None:
    library = PromptLibrary()
    loaded = library.preload(8000)
    assert loaded == 2 * (len(NAMES) + 100)  # both languages, every prompt and number
    before = library.get(Language.EN, "welcome", 8000)
    assert library.get(Language.EN, "welcome", 8000) is before  # from the cache: nothing converted at play time
    assert len(library._cache) == loaded


def write(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def test_prompts_clinic_recordings_override_file_by_file(tmp_path: Path) -> None:
    own = np.full(16000, 1234, np.int16)
    write(tmp_path / "fr" / "welcome.wav", own)
    library = PromptLibrary(tmp_path)
    assert np.array_equal(library.get(Language.FR, "welcome", 16000), own)
    assert library.path(Language.FR, "goodbye") == PromptLibrary().path(Language.FR, "goodbye")
    assert library.path(Language.EN, "welcome") != tmp_path / "en" / "welcome.wav"


def test_prompts_bad_recordings_refused(tmp_path: Path) -> None:
    write(tmp_path / "fr" / "welcome.wav", np.zeros(100, np.int16), channels=2)
    write(tmp_path / "fr" / "goodbye.wav", np.zeros(100, np.int16), rate=44100)
    (tmp_path / "fr" / "muted.wav").write_bytes(b"not a wav")
    library = PromptLibrary(tmp_path)
    with pytest.raises(MissingPrompt, match="mono 16-bit"):
        library.get(Language.FR, "welcome", 8000)
    with pytest.raises(MissingPrompt, match="expected 8, 16 or 48 kHz"):
        library.get(Language.FR, "goodbye", 8000)
    with pytest.raises(MissingPrompt, match="not a WAV file"):
        library.get(Language.FR, "muted", 8000)
    with pytest.raises(MissingPrompt, match="not found"):
        library.get(Language.FR, "no-such-prompt", 8000)
    with pytest.raises(MissingPrompt, match="is not one"):
        PromptLibrary(tmp_path / "missing")
    with pytest.raises(ValueError, match="0 to 99"):
        library.say_number(Language.FR, 100, 8000)


def test_prompts_folder_setting(tmp_path: Path) -> None:
    assert load_settings(environ={}).prompts.folder is None
    settings = load_settings(environ={"PASSERELLE_PROMPTS__FOLDER": str(tmp_path)})
    assert settings.prompts.folder == tmp_path
