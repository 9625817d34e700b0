from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from passerelle.cli import main
from passerelle.dtmf_cli import read_wav, write_wav
from tests.tools import require


def test_dtmf_generate_then_detect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "code.wav"
    assert main(["dtmf", "generate", "123456789#", str(out), "--on-ms", "80", "--off-ms", "120"]) == 0
    samples, rate = read_wav(out)
    assert rate == 8000
    assert len(samples) == 10 * 200 * 8
    capsys.readouterr()
    assert main(["dtmf", "detect", str(out), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert "".join(f["digit"] for f in found) == "123456789#"
    for k, f in enumerate(found):
        assert abs(f["start_ms"] - 200 * k) <= 5
        assert abs(f["end_ms"] - (200 * k + 80)) <= 5


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_dtmf_generate_rates_detect_text(tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: int) -> None:
    out = tmp_path / "d.wav"
    assert main(["dtmf", "generate", "*0#", str(out), "--rate", str(rate)]) == 0
    assert read_wav(out)[1] == rate
    capsys.readouterr()
    assert main(["dtmf", "detect", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["*", "0", "#"]


def test_dtmf_detect_any_wav_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 44.1 kHz stereo 24-bit file (WAVE_FORMAT_EXTENSIBLE) and a float one, written by sox."""
    sox = require("sox")
    source = tmp_path / "d.wav"
    assert main(["dtmf", "generate", "5A9", str(source)]) == 0
    for name, options in (("s24.wav", ["-r", "44100", "-c", "2", "-b", "24"]), ("f.wav", ["-e", "floating-point"])):
        converted = tmp_path / name
        subprocess.run([sox, str(source), *options, str(converted)], check=True, timeout=60)
        capsys.readouterr()
        assert main(["dtmf", "detect", str(converted), "--json"]) == 0
        assert [f["digit"] for f in json.loads(capsys.readouterr().out)] == ["5", "A", "9"]


def test_dtmf_detect_first_channel_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mono = tmp_path / "m.wav"
    assert main(["dtmf", "generate", "1", str(mono)]) == 0
    samples, _ = read_wav(mono)
    stereo = tmp_path / "st.wav"
    import wave

    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.stack([np.zeros_like(samples), samples], axis=1).astype("<i2").tobytes())
    capsys.readouterr()
    assert main(["dtmf", "detect", str(stereo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a WAV file"), (b"RIFF\x00\x00\x00\x00WAVEjunk", "without fmt or data"), (b"hello world", "not a WAV")],
)
def test_dtmf_detect_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    assert main(["dtmf", "detect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


def test_dtmf_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dtmf", "detect", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["dtmf", "generate", "12x", str(tmp_path / "x.wav")]) == 2
    assert "expected characters among" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()
    assert main(["dtmf", "generate", "12", str(tmp_path / "x.wav"), "--rate", "11025"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_dtmf_wav_round_trip(tmp_path: Path) -> None:
    samples = (np.arange(-1000, 1000, 3)).astype(np.int16)
    write_wav(tmp_path / "r.wav", samples, 16000)
    back, rate = read_wav(tmp_path / "r.wav")
    assert rate == 16000
    assert np.array_equal(back, samples)
