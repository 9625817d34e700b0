"""A linphone phone (Debian's ``linphone-daemon``: liblinphone and belle-sip, a SIP stack independent of both the
bridge's and baresip's), driven over the daemon's Unix socket. It plays a WAV file into its calls; what it
receives is told by its log's bandwidth reports (it has no sound card here, so nothing it hears is recorded)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
import uuid
import wave
from pathlib import Path

import numpy as np

from tests.tools import require


class Linphone:
    def __init__(self, folder: Path, sip_port: int, rtp_port: int, mic: np.ndarray, *, rate_hz: int = 8000,
                 auto_answer: bool = False, sip_info_digits: bool = False) -> None:  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)  # its database: the core
        self.folder = folder  # does not start ("global state is not on", 503 to every call) when it cannot open it
        self.mic_path = folder / "mic.wav"
        with wave.open(str(self.mic_path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate_hz)
            w.writeframes(mic.astype("<i2").tobytes())
        (folder / "linphonerc").write_text(
            f"[sip]\nsip_port={sip_port}\nsip_tcp_port=-1\nsip_tls_port=-1\nbind_address=127.0.0.1\n"
            "default_proxy=-1\nguess_hostname=0\nuse_ipv6=0\n"
            f"[rtp]\naudio_rtp_port={rtp_port}\naudio_jitt_comp=60\n"
            "[net]\nfirewall_policy=0\n[sound]\nechocancellation=0\n"
            + ("[sip]\nuse_info=1\nuse_rfc2833=0\n" if sip_info_digits else "")
        )
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self.pipe = f"passerelle-linphone-{uuid.uuid4().hex[:12]}"
        self.socket_path = Path("/tmp") / self.pipe  # noqa: S108  (--pipe names a socket the daemon makes in /tmp)
        command = [require("linphone-daemon"), "--config", str(folder / "linphonerc"), "--pipe", self.pipe,
                   "--log", str(folder / "linphone.log"), "--disable-stats-events"]  # fmt: skip
        if auto_answer:
            command.append("--auto-answer")
        with (folder / "daemon.log").open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=folder,
                env={**os.environ, "HOME": str(folder)},
            )  # its database there
        deadline = time.monotonic() + 15
        while not self.socket_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"linphone-daemon did not start; see {folder / 'daemon.log'}")
            time.sleep(0.1)
        self.sip_port = sip_port

    def _connection(self) -> socket.socket:
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._socket.connect(str(self.socket_path))
        return self._socket

    def command(self, line: str, timeout_s: float = 5.0) -> str:
        """One command on the daemon's one connection (it serves one client at a time); its answer ("Status: Ok"
        or "Status: Error" and the lines after), without the events the daemon pushes meanwhile."""
        with self._lock:
            s = self._connection()
            s.settimeout(timeout_s)
            s.sendall(line.encode() + b"\n")
            received = ""
            with contextlib.suppress(TimeoutError):
                while True:  # whole once "Status:" has come and the daemon pauses
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    received += chunk.decode(errors="replace")
                    if "Status:" in received:
                        s.settimeout(0.2)
            answer = received[received.find("Status:") :] if "Status:" in received else received
            return answer.split("Event-type:", 1)[0]

    def call(self, uri: str) -> int:
        answer = self.command(f"call {uri}")
        found = re.search(r"Id: (\d+)", answer)
        if found is None:
            raise RuntimeError(f"linphone did not place the call: {answer!r}")
        return int(found.group(1))

    def state(self) -> str:
        """The current call's state (``StreamsRunning`` once it is up), or "" when it has none."""
        found = re.search(r"State: (\S+)", self.command("call-status"))
        return found.group(1) if found else ""

    def wait_state(self, wanted: str, limit_s: float = 10.0) -> bool:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.state() == wanted:
                return True
            time.sleep(0.1)
        return False

    def play(self) -> bool:
        """Its microphone file into the current call (the daemon's in-call player), from the start."""
        return "Status: Ok" in self.command(f"incall-player-start {self.mic_path}")

    def received_kbit_s(self) -> list[float]:
        """The audio it received, as its log's bandwidth reports give it (kbit/s, one every few seconds).
        (``call-stats`` would tell it too, but crashes Debian's daemon 5.1.)"""
        log = (self.folder / "linphone.log").read_text(errors="replace")
        return [float(d) for d in re.findall(r"\(audio\) \| cpu: [0-9.]+% \| RTP : \[d=([0-9.]+),", log)]

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.command("quit", timeout_s=2)
        if self._socket is not None:
            self._socket.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.socket_path.unlink(missing_ok=True)
