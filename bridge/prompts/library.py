"""Loading prompts once, at the rate a leg needs, and saying a number as a sequence of prompts."""

from __future__ import annotations

import tomllib
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from config import ConfigError, Language
from mixer import Resampler

BUILT_IN = Path(__file__).resolve().parent
NAMES = frozenset(tomllib.loads((BUILT_IN / "texts.toml").read_text(encoding="utf-8"))["fr"])


class MissingPrompt(ConfigError):
    """A prompt file is missing or unreadable."""


class PromptLibrary:
    def __init__(self, custom_folder: Path | None = None, *, built_in: bool = True) -> None:
        self._custom = custom_folder
        self._roots = [r for r in (custom_folder, BUILT_IN if built_in else None) if r is not None]
        if custom_folder is not None and not custom_folder.is_dir():
            raise MissingPrompt(f"prompts.folder: expected a folder of recordings; {custom_folder} is not one")
        self._cache: dict[tuple[Language, str, int], npt.NDArray[np.int16]] = {}

    def path(self, language: Language, name: str) -> Path:
        for root in self._roots:
            candidate = root / language.value / f"{name}.wav"
            if candidate.is_file():
                return candidate
        raise MissingPrompt(f"prompt {language.value}/{name}.wav not found (run scripts/make_prompts.py)")

    def _all(self) -> list[tuple[Language, str]]:
        return [(language, name) for language in Language
                for name in [*sorted(NAMES), *(f"number_{n}" for n in range(100))]]  # fmt: skip

    def preload(self, rate_hz: int) -> int:
        """Every prompt converted to ``rate_hz`` now (``passerelle serve`` does it for phones' 8 kHz before it
        takes calls): converting one at its first playing ran in the media loop and made that tick long. How
        many were loaded."""
        every = self._all()
        for language, name in every:
            self.get(language, name, rate_hz)
        return len(every)

    def check(self) -> None:
        """Every prompt of every language is there, or MissingPrompt in one line that says how to make them: a
        bridge without its prompts would answer calls with silence (installed with pip alone, they are not made)."""
        wanted = self._all()
        missing = []
        for language, name in wanted:
            try:
                self.path(language, name)
            except MissingPrompt:
                missing.append(f"{language.value}/{name}.wav")
        if missing:
            others = f" and {len(missing) - 1} others" if len(missing) > 1 else ""
            raise MissingPrompt(
                f"voice prompts missing ({missing[0]}{others}): make them with `python scripts/make_prompts.py` "
                "(espeak-ng and sox; scripts/run.sh does it), or set prompts.folder to a clinic's recordings"
            )

    def get(self, language: Language, name: str, rate_hz: int) -> npt.NDArray[np.int16]:
        """The prompt as int16 samples at ``rate_hz`` (8, 16 or 48 kHz), loaded and converted once."""
        key = (language, name, rate_hz)
        cached = self._cache.get(key)
        if cached is None:
            samples, rate = _read(self.path(language, name))
            if rate != rate_hz:
                ratio = max(rate, rate_hz) // min(rate, rate_hz)
                samples = np.concatenate([samples, np.zeros(-len(samples) % ratio, np.int16)])
                samples = Resampler(rate, rate_hz).process(samples)
            samples.flags.writeable = False
            cached = self._cache[key] = samples
        return cached

    def say_number(self, language: Language, number: int, rate_hz: int) -> npt.NDArray[np.int16]:
        if not 0 <= number <= 99:
            raise ValueError("numbers 0 to 99 are recorded")
        return self.get(language, f"number_{number}", rate_hz)

    def sequence(self, language: Language, names: list[str], rate_hz: int, gap_ms: int = 150) -> npt.NDArray[np.int16]:
        gap = np.zeros(rate_hz * gap_ms // 1000, np.int16)
        parts: list[npt.NDArray[np.int16]] = []
        for name in names:
            parts += [self.get(language, name, rate_hz), gap]
        return np.concatenate(parts[:-1]) if parts else np.zeros(0, np.int16)


def _read(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise MissingPrompt(f"{path}: prompts are mono 16-bit WAV files")
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    except (wave.Error, EOFError) as exc:
        raise MissingPrompt(f"{path}: not a WAV file ({exc})") from None
    if rate not in (8000, 16000, 48000):
        raise MissingPrompt(f"{path}: expected 8, 16 or 48 kHz, got {rate} Hz")
    return samples, rate
