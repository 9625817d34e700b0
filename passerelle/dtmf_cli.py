"""``passerelle dtmf detect FILE.wav`` and ``passerelle dtmf generate DIGITS OUT.wav``: WAV in and out."""

from __future__ import annotations

import json
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from config import PasserelleError
from dtmf.detector import DtmfDetector
from dtmf.tones import DIGITS, ToneSpec, generate

DETECT_RATE = 8000


class WavError(PasserelleError):
    """A file that is not a readable PCM WAV."""


@dataclass(frozen=True, slots=True)
class Found:
    digit: str
    start_ms: float
    end_ms: float


def read_wav(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    """First channel as int16, and the rate: integer PCM of 8 to 32 bits or 32/64-bit float, plain or
    WAVE_FORMAT_EXTENSIBLE (what sox and most editors write for 24-bit or multichannel files)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WavError(f"{path}: no such file") from None
    except OSError as exc:
        raise WavError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a WAV file")
    fmt: tuple[int, int, int, int] | None = None
    payload: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        body = data[offset + 8 : offset + 8 + size]
        if chunk == b"fmt " and len(body) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the real tag
            fmt = (tag, channels, rate, bits)
        elif chunk == b"data":
            payload = body
        offset += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise WavError(f"{path}: WAV file without fmt or data chunk")
    tag, channels, rate, bits = fmt
    kinds = {(1, 8): "u1", (1, 16): "<i2", (1, 24): "i3", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
    kind = kinds.get((tag, bits))
    if kind is None or channels < 1 or rate <= 0:
        raise WavError(f"{path}: format {tag} with {bits}-bit samples is not supported (PCM or float expected)")
    width = bits // 8
    frames = len(payload) // (width * channels)
    raw = np.frombuffer(payload[: frames * width * channels], dtype=np.uint8).reshape(frames, channels, width)[:, 0]
    if kind == "u1":
        samples = (raw[:, 0].astype(np.int16) - 128) << 8
    elif kind == "i3":
        samples = raw[:, 1:].copy().view("<i2")[:, 0]
    elif kind.startswith("<f"):
        values = raw.copy().view(kind)[:, 0].astype(np.float64)
        samples = np.clip(np.rint(values * 32768), -32768, 32767).astype(np.int16)
    else:
        samples = raw[:, width - 2 :].copy().view("<i2")[:, 0]
    return np.ascontiguousarray(samples, dtype=np.int16), int(rate)


def write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def to_rate(samples: npt.NDArray[np.int16], rate: int, target: int) -> npt.NDArray[np.int16]:
    """Whole-file resampling in the frequency domain (band-limited; files are short)."""
    if rate == target:
        return samples
    n_out = round(len(samples) * target / rate)
    spectrum = np.fft.rfft(samples.astype(np.float64))
    keep = min(len(spectrum), n_out // 2 + 1)
    resized = np.zeros(n_out // 2 + 1, dtype=complex)
    resized[:keep] = spectrum[:keep]
    out = np.fft.irfft(resized, n_out) * (n_out / len(samples))
    result: npt.NDArray[np.int16] = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return result


def detect_file(path: Path) -> list[Found]:
    samples, rate = read_wav(path)
    if rate % 200 or rate < DETECT_RATE:  # the detector needs whole 5 ms hops
        samples, rate = to_rate(samples, rate, DETECT_RATE), DETECT_RATE
    detector = DtmfDetector(rate)
    frame = rate // 50
    padded = np.concatenate([samples, np.zeros(rate // 5, np.int16)])  # let a final digit end
    found = []
    for i in range(0, len(padded), frame):
        for event in detector.process(padded[i : i + frame]).events:
            if event.end is not None:
                found.append(Found(event.digit, round(event.start * 1000 / rate, 1), round(event.end * 1000 / rate, 1)))
    return found


def run_detect(path: Path, as_json: bool) -> int:
    found = detect_file(path)
    if as_json:
        print(json.dumps([{"digit": f.digit, "start_ms": f.start_ms, "end_ms": f.end_ms} for f in found]))
    else:
        for f in found:
            print(f"{f.digit}\t{f.start_ms:.1f}\t{f.end_ms:.1f}")
    return 0


def run_generate(digits: str, path: Path, rate: int, spec: ToneSpec) -> int:
    bad = sorted({d for d in digits.upper() if d not in DIGITS})
    if bad or not digits:
        raise WavError(f"digits: expected characters among {DIGITS}, got {digits!r}")
    write_wav(path, generate(digits.upper(), rate, spec), rate)
    return 0
