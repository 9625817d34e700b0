"""Real independent SIP phones for the tests: baresip processes driven over their ctrl_tcp interface."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

from tests.tools import require

MODULES = Path("/usr/lib/baresip/modules")


def _free(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Phone:
    """A baresip phone. Its ports are found free just before it starts, yet another process (a browser, the bridge's
    media) can take one meanwhile: baresip then exits, and the phone starts again on other ports, up to three times
    (the SIP port stays when ``keep_sip_port``: a test that calls the phone there). ``codecs``: baresip's codec
    modules, in the order it offers them; ``rate_hz``: its microphone's (and its sound's) sample rate; ``mediaenc``:
    baresip's media encryption (``srtp``, ``srtp-mand``: SDES)."""

    def __init__(
        self, folder: Path, sip_port: int, ctrl_port: int, rtp_base: int, mic: np.ndarray, *, answer: str = "manual",
        keep_sip_port: bool = False, codecs: tuple[str, ...] = ("g711",), rate_hz: int = 8000,
        mediaenc: str = "", channels: int = 1,
    ) -> None:  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.codecs, self.rate_hz = codecs, rate_hz
        self.dump = folder / "dump"
        self.dump.mkdir(exist_ok=True)
        self.mic_path = folder / "mic.wav"
        with wave.open(str(self.mic_path), "wb") as w:  # baresip's Opus runs in stereo: the same on both sides
            w.setnchannels(channels)
            w.setsampwidth(2)
            w.setframerate(rate_hz)
            w.writeframes(np.repeat(mic.astype("<i2"), channels).tobytes())
        encryption = f";mediaenc={mediaenc}" if mediaenc else ""  # e.g. srtp-mand: SDES, RTP/SAVP
        (folder / "accounts").write_text(f"<sip:+33612345678@127.0.0.1>;regint=0;answermode={answer}{encryption}\n")
        self.mediaenc = mediaenc
        for attempt in range(3):
            if attempt:
                ctrl_port = _free(socket.SOCK_STREAM)
                if not keep_sip_port:
                    sip_port = _free(socket.SOCK_DGRAM)
            if self._start(sip_port, ctrl_port, rtp_base):
                self.sip_port, self.ctrl_port = sip_port, ctrl_port
                return
        raise RuntimeError(f"baresip did not start; see {folder / 'baresip.log'}")

    def _start(self, sip_port: int, ctrl_port: int, rtp_base: int) -> bool:
        codecs = "".join(f"module {codec}.so\n" for codec in self.codecs)
        (self.folder / "config").write_text(
            f"module_path {MODULES}\n"
            f"sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\nrtp_ports {rtp_base}-{rtp_base + 99}\n"
            f"audio_source aufile,{self.mic_path}\nausrc_srate {self.rate_hz}\n"
            f"audio_player aubridge,nil\naudio_alert aubridge,nil\n{codecs}"
            "module aufile.so\nmodule aubridge.so\nmodule sndfile.so\n"
            + ("module srtp.so\n" if self.mediaenc.startswith("srtp") else "")
            + f"module account.so\nmodule menu.so\nmodule ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\n"
            f"snd_path {self.dump}\n"
        )
        with (self.folder / "baresip.log").open("ab") as log:
            self.process = subprocess.Popen(
                [require("baresip"), "-f", str(self.folder)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=self.folder,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            # Up when its control port answers a command (another process may hold that port: baresip then exits).
            if self._answers(ctrl_port) and self.process.poll() is None:
                return True
            time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        return False

    @staticmethod
    def _answers(ctrl_port: int) -> bool:
        body = json.dumps({"command": "listcalls", "params": "", "token": "up"}).encode()
        try:
            with socket.create_connection(("127.0.0.1", ctrl_port), timeout=0.5) as s:
                s.sendall(str(len(body)).encode() + b":" + body + b",")
                s.settimeout(2)
                reply = s.recv(65536)
        except OSError:
            return False
        return b'"response"' in reply and b'"token":"up"' in reply.replace(b" ", b"")

    def command(self, name: str, params: str = "") -> str:
        """Send one ctrl_tcp command (a netstring of JSON); the text baresip answers with ("" when none)."""
        body = json.dumps({"command": name, "params": params, "token": "t"}).encode()
        reply = b""
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=3) as s:
            s.sendall(str(len(body)).encode() + b":" + body + b",")
            s.settimeout(3)
            with contextlib.suppress(OSError):
                while not reply.endswith(b","):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        _, _, payload = reply.partition(b":")
        try:
            data = json.loads(payload[:-1] or b"{}")
        except ValueError:
            return ""
        return str(data.get("data", "")) if isinstance(data, dict) else ""

    def in_call(self) -> bool:
        """True while the phone has a call up (the bridge's BYE ends it)."""
        listing = self.command("listcalls")
        return "sip:" in listing

    def heard(self) -> np.ndarray:
        """What the phone received (sndfile's decoder-side dump), at the codec's rate."""
        dumps = sorted(self.dump.glob("*-dec.wav"))
        return self.read(dumps[-1]) if dumps else np.zeros(0, np.int16)

    @staticmethod
    def read(path: Path) -> np.ndarray:
        with wave.open(str(path)) as w:  # a stereo dump (Opus) as its first channel
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
            return samples[:: w.getnchannels()]

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.command("quit")
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
