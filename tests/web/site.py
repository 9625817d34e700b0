"""A real ``passerelle serve`` for browser tests, and Debian's Chromium driven by Playwright with a fake
microphone file."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.bridge.phones import Phone
from tests.bridge.stack import free_port as free_udp_port
from tests.cli.test_serve import env_for, free_port
from tests.mixer.signals import tone
from tests.tools import require


@dataclass
class Site:
    base: str
    env: dict[str, str]
    folder: Path
    sip: str  # host:port of its SIP side
    process: subprocess.Popen[bytes] | None = None

    def conference(self, *args: str) -> dict[str, Any]:
        done = subprocess.run(
            [require("passerelle"), "conference", "create", "--name", "Consultation Dr Martin", "--json", *args],
            env=self.env, cwd=self.folder, capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        created: dict[str, Any] = json.loads(done.stdout)
        return created

    def start(self) -> None:
        log = (self.folder / "serve.log").open("ab")  # a file, not a pipe: a chatty service never blocks on it
        self.process = subprocess.Popen([require("passerelle"), "serve"], env=self.env, cwd=self.folder,
                                        stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2):  # noqa: S310 - http on loopback
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("passerelle serve did not start; see serve.log") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def serving(folder: Path, port: int | None = None, **extra: str) -> Iterator[Site]:
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    sip = f"127.0.0.1:{free_port()}"
    env = env_for(
        folder, PASSERELLE_HTTP__LISTEN=f"127.0.0.1:{port}", PASSERELLE_HTTP__PUBLIC_BASE_URL=base,
        PASSERELLE_SIP__LISTEN=sip, PASSERELLE_CONTROL__SOCKET=str(folder / "control.sock"), **extra,
    )  # fmt: skip
    site = Site(base, env, folder, sip)
    try:
        site.start()
        yield site
    finally:
        site.stop()


def tone_wav(path: Path, freq: float = 440.0, seconds: float = 10.0, rate: int = 48000) -> Path:
    n = np.arange(int(rate * seconds))
    samples = (8000 * np.sin(2 * np.pi * freq * n / rate)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def chromium_args(mic: Path | None, *, allow_media: bool = True) -> list[str]:
    args = ["--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
    if allow_media:
        args.append("--use-fake-ui-for-media-stream")  # answers the permission prompt with "allow"
    else:
        args.append("--deny-permission-prompts")
    if mic is not None:
        args.append(f"--use-file-for-fake-audio-capture={mic}")
    return args


def webrtc_args(mic: Path) -> list[str]:
    """Chromium for a call with the bridge on loopback: real host addresses (no mDNS names), loopback allowed."""
    return [*chromium_args(mic), "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns"]


def talking_phone(folder: Path, rtp_base: int) -> Phone:
    """A baresip phone that talks like a person: 700 Hz in syllable-long bursts (a steady tone is noise to voice
    activity)."""
    voice = tone(700, 8000 * 60, 8000, rate=8000) * (np.arange(8000 * 60) % 4000 < 2400)
    return Phone(folder, free_udp_port(), free_udp_port(), rtp_base, voice.astype(np.int16))


def join_room(page: Any, site: Site, url: str, name: str) -> None:
    """Join through a link's page as a person would (microphone only), until the room's audio is connected."""
    from playwright.sync_api import expect

    page.goto(site.base + "/" + url.split("/", 3)[3])
    page.fill("#name", name)
    page.click("#join-button")
    page.wait_for_url("**/room/**")
    expect(page.locator("body")).to_have_attribute("data-audio", "connected", timeout=20_000)


# How many pixels of a canvas (by its id, or a selector) are drawn and not white: something was drawn on it (on a
# transparent canvas, as the annotations', the untouched pixels are (0, 0, 0, 0): not counted).
CANVAS_INK = """(id) => { const c = document.getElementById(id) || document.querySelector(id);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 100 && (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200)) n++;
  }
  return n; }"""
