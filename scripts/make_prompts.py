"""Regenerates every voice prompt from bridge/prompts/texts.toml with espeak-ng (and numbers 0-99 for counts).

usage: .venv/bin/python scripts/make_prompts.py      (needs espeak-ng and sox: scripts/test.sh installs both)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

PROMPTS = Path(__file__).resolve().parents[1] / "bridge" / "prompts"
RATE = 16000
VOICES = {"fr": "fr+f3", "en": "en+f3"}


def speak(text: str, language: str, out: Path, espeak: str, sox: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([espeak, "-v", VOICES[language], "-s", "150", "-w", str(raw), text], check=True, timeout=60)
        # 16 kHz mono 16-bit, 50 ms of silence trimmed at both ends, normalised to -3 dBFS peak
        subprocess.run(
            [sox, str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out),
             "silence", "1", "0.05", "0.1%", "reverse", "silence", "1", "0.05", "0.1%", "reverse", "norm", "-3"],
            check=True, timeout=60,
        )  # fmt: skip


def main() -> int:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        print("make_prompts: espeak-ng and sox are needed", file=sys.stderr)
        return 1
    texts = tomllib.loads((PROMPTS / "texts.toml").read_text(encoding="utf-8"))
    for language, prompts in texts.items():
        folder = PROMPTS / language
        folder.mkdir(exist_ok=True)
        for name, text in prompts.items():
            speak(text, language, folder / f"{name}.wav", espeak, sox)
        for number in range(100):
            speak(str(number), language, folder / f"number_{number}.wav", espeak, sox)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
