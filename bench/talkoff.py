"""Talk-off: false digits the in-band detector finds in speech and music (none of it holds a keypad tone).

``passerelle bench talkoff [--music-minutes M] [--speech-repeats R]`` prints JSON: false digits and digits per hour
on espeak-ng speech (French and English voices, clean and in noise) and on generated music — chords and melodies
with several timbres, which is what separates detectors: a chord can put two notes within 1.5 % of a row and a
column frequency (F5 = 698.5 Hz and F#6 = 1480 Hz are digit 3), so the detector must rely on more than frequency.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dtmf.detector import DtmfDetector

RATE = 8000
SENTENCES = {
    "fr": [
        "Bonjour madame, je suis le docteur Martin. Comment allez-vous aujourd'hui ?",
        "Avez-vous bien pris votre traitement cette semaine, matin et soir ?",
        "Je vais vous demander de respirer profondément, puis de tousser deux fois.",
        "Les résultats de la prise de sang sont arrivés hier, ils sont plutôt rassurants.",
        "Nous allons prévoir une nouvelle consultation dans trois semaines, le mardi à neuf heures trente.",
        "Quatre cent quatre-vingt-dix-sept, huit cent cinquante-deux, mille deux cent neuf.",
    ],
    "en": [
        "Good morning. Please describe your symptoms, and tell me when they started.",
        "Have you noticed any fever, headache, or shortness of breath during the night?",
        "I will send the prescription to your pharmacy this afternoon.",
        "One, two, three, four, five, six, seven, eight, nine, zero, star, hash.",
        "The nurse will call you back tomorrow morning to book the follow-up appointment.",
    ],
}
VOICES = {"fr": ["fr", "fr+f2", "fr+m3"], "en": ["en", "en-us+f3", "en+m7"]}


def count_digits(signal: npt.NDArray[np.int16], rate: int = RATE) -> list[str]:
    detector = DtmfDetector(rate)
    found: list[str] = []
    step = rate // 50
    for i in range(0, len(signal) - step + 1, step):
        found += [e.digit for e in detector.process(signal[i : i + step]).events if e.end is None]
    return found


def _note_hz(semitones_from_a4: int) -> float:
    return float(440.0 * 2 ** (semitones_from_a4 / 12))


TIMBRES: dict[str, tuple[list[float], float]] = {
    # harmonic amplitudes, decay per second (0 = sustained)
    "flute": ([1.0, 0.12, 0.04], 0.0),
    "clarinet": ([1.0, 0.05, 0.5, 0.03, 0.25, 0.02, 0.12], 0.0),
    "organ": ([1.0, 0.6, 0.4, 0.25, 0.15, 0.1], 0.0),
    "piano": ([1.0, 0.55, 0.3, 0.18, 0.1, 0.06, 0.04], 2.5),
    "strings": ([1.0 / k for k in range(1, 12)], 0.0),
    "sine": ([1.0], 0.0),
}


def _voice(freq: float, seconds: float, timbre: str, rng: np.random.Generator, rate: int) -> npt.NDArray[np.float64]:
    harmonics, decay = TIMBRES[timbre]
    t = np.arange(int(seconds * rate)) / rate
    vibrato = 1 + (0.004 * np.sin(2 * np.pi * 5.5 * t) if timbre in ("strings", "flute") else 0.0)
    phase = 2 * np.pi * freq * np.cumsum(vibrato) / rate
    out = np.zeros_like(t)
    for k, amp in enumerate(harmonics, start=1):
        if freq * k < rate / 2 - 200:
            out += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    attack = np.minimum(t / 0.015, 1.0)
    release = np.minimum((seconds - t) / 0.03, 1.0)
    envelope = attack * release * (np.exp(-decay * t) if decay else 1.0)
    shaped: npt.NDArray[np.float64] = out * envelope
    return shaped


def music(seconds: float, seed: int = 0, rate: int = RATE) -> npt.NDArray[np.int16]:
    """Chord progressions with a melody on top, random keys, tempos and timbres (−14 dBFS average)."""
    rng = np.random.default_rng(seed)
    total = int(seconds * rate)
    out = np.zeros(total + rate * 30)  # room for the phrase that crosses the end
    position = 0
    chords = [(0, 4, 7), (0, 3, 7), (0, 4, 7, 10), (0, 3, 7, 10), (0, 4, 7, 11), (0, 5, 7), (0, 3, 6)]
    while position < total:
        timbre_chord = str(rng.choice(list(TIMBRES)))
        timbre_melody = str(rng.choice(list(TIMBRES)))
        beat = float(rng.uniform(0.18, 0.6))
        root = int(rng.integers(-14, 2))  # around F3 to B4
        for _ in range(int(rng.integers(2, 6))):  # a phrase
            shape = chords[int(rng.integers(len(chords)))]
            chord_root = root + int(rng.choice([0, 5, 7, -5, 2, 9]))
            length = beat * int(rng.integers(2, 5))
            n = int(length * rate)
            for interval in shape:
                for octave in rng.choice([0, 12, 24], size=int(rng.integers(1, 3)), replace=False):
                    hz = _note_hz(chord_root + interval + int(octave))
                    voice = 0.25 * _voice(hz, length, timbre_chord, rng, rate)
                    out[position : position + len(voice)] += voice
            t = 0.0
            scale = [0, 2, 4, 5, 7, 9, 11, 12, 14, 16]
            while t < length - 0.05:
                note_len = min(beat * float(rng.choice([0.5, 1, 1, 2])), length - t)
                hz = _note_hz(chord_root + 12 + int(rng.choice(scale)) + int(rng.choice([0, 12])))
                start = position + int(t * rate)
                voice = 0.5 * _voice(hz, note_len, timbre_melody, rng, rate)
                out[start : start + len(voice)] += voice
                t += note_len
            position += n
    out = out[:total]
    out *= 32768 * 10 ** (-14 / 20) / max(np.sqrt(np.mean(out**2)), 1e-9)
    clipped: npt.NDArray[np.int16] = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return clipped


def speech(folder: Path, rate: int = RATE) -> dict[str, npt.NDArray[np.int16]]:
    """Each language's sentences in each voice, at ``rate`` (espeak-ng, then sox)."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        raise RuntimeError("espeak-ng and sox are needed (scripts/test.sh installs them)")
    out = {}
    for language, sentences in SENTENCES.items():
        parts = []
        for v, voice in enumerate(VOICES[language]):
            for s, text in enumerate(sentences):
                raw, resampled = folder / f"{language}{v}_{s}.wav", folder / f"{language}{v}_{s}r.wav"
                subprocess.run([espeak, "-v", voice, "-w", str(raw), text], check=True, timeout=60)
                subprocess.run([sox, str(raw), "-r", str(rate), str(resampled)], check=True, timeout=60)
                with wave.open(str(resampled)) as w:
                    parts.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
                parts.append(np.zeros(rate // 3, np.int16))
        out[language] = np.concatenate(parts)
    return out


def with_noise(signal: npt.NDArray[np.int16], snr_db: float, seed: int) -> npt.NDArray[np.int16]:
    x = signal.astype(np.float64)
    active = x[np.abs(x) > 100]
    power = np.mean(active**2) if active.size else 1.0
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(x))
    noisy: npt.NDArray[np.int16] = np.clip(np.rint(x + noise), -32768, 32767).astype(np.int16)
    return noisy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench talkoff")
    parser.add_argument("--music-minutes", type=float, default=30.0)
    parser.add_argument("--speech-repeats", type=int, default=1, help="noise variants of the speech corpus")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = speech(Path(tmp))
    for language, clean in corpus.items():
        for snr in (None, 20.0, 10.0):
            for repeat in range(args.speech_repeats if snr is not None else 1):
                signal = clean if snr is None else with_noise(clean, snr, seed=repeat)
                found = count_digits(signal)
                hours = len(signal) / RATE / 3600
                results.append({"material": f"speech-{language}", "snr_db": snr, "seconds": round(hours * 3600, 1),
                                "false_digits": len(found), "digits": "".join(found),
                                "per_hour": round(len(found) / hours, 2)})  # fmt: skip
    minutes_per_piece = 5.0
    pieces = max(1, round(args.music_minutes / minutes_per_piece))
    music_found: list[str] = []
    for seed in range(pieces):
        music_found += count_digits(music(minutes_per_piece * 60, seed=seed))
    hours = pieces * minutes_per_piece / 60
    results.append({"material": "music", "snr_db": None, "seconds": hours * 3600, "false_digits": len(music_found),
                    "digits": "".join(music_found), "per_hour": round(len(music_found) / hours, 2)})  # fmt: skip
    print(json.dumps({"results": results}))
    return 0
