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


class Phone:
    def __init__(
        self, folder: Path, sip_port: int, ctrl_port: int, rtp_base: int, mic: np.ndarray, *, answer: str = "manual"
    ) -> None:
        baresip = require("baresip")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.ctrl_port = folder, ctrl_port
        self.dump = folder / "dump"
        self.dump.mkdir(exist_ok=True)
        mic_path = folder / "mic.wav"
        with wave.open(str(mic_path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(mic.astype("<i2").tobytes())
        (folder / "config").write_text(
            f"module_path {MODULES}\n"
            f"sip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\nrtp_ports {rtp_base}-{rtp_base + 99}\n"
            f"audio_source aufile,{mic_path}\nausrc_srate 8000\naudio_player aubridge,nil\naudio_alert aubridge,nil\n"
            "module g711.so\nmodule aufile.so\nmodule aubridge.so\nmodule sndfile.so\nmodule account.so\n"
            f"module menu.so\nmodule ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{ctrl_port}\nsnd_path {self.dump}\n"
        )
        (folder / "accounts").write_text(f"<sip:+33612345678@127.0.0.1>;regint=0;answermode={answer}\n")
        self.process = subprocess.Popen(
            [baresip, "-f", str(folder)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=folder,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ctrl_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("baresip did not start")

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
        """What the phone received (sndfile's decoder-side dump), 8 kHz."""
        dumps = sorted(self.dump.glob("*-dec.wav"))
        return self.read(dumps[-1]) if dumps else np.zeros(0, np.int16)

    @staticmethod
    def read(path: Path) -> np.ndarray:
        with wave.open(str(path)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.command("quit")
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
