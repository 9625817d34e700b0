"""Three real `passerelle serve` nodes (127.0.0.2–4) sharing one PostgreSQL, behind a real Kamailio (127.0.0.1):
two baresip callers dial the front, land on different nodes and meet in one room, mixed on one node, hearing each
other; a browser opening the room's link on another node's site is sent to the room's node and hears them; that
node is killed (SIGKILL): a new caller goes to a live node, which takes the room over."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from bench.front import kamailio_command
from passerelle import control
from rooms.cluster import Cluster
from rooms.db import make_engine, session_factory, upgrade
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port as free_udp_port
from tests.cli.test_serve import env_for, free_port
from tests.mixer.signals import magnitude_db, tone
from tests.tools import require
from tests.web.site import Site, join_room, tone_wav, webrtc_args

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
TONES = (600.0, 1300.0, 900.0)
LISTEN = """async (tones) => {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(window.passerelleRemote).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const loudest = new Float32Array(analyser.frequencyBinCount).fill(-Infinity);
  for (let i = 0; i < 30; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    analyser.getFloatFrequencyData(bins);
    for (let k = 0; k < bins.length; k++) loudest[k] = Math.max(loudest[k], bins[k]);
  }
  const bin = (hz) => Math.round(hz / (context.sampleRate / 8192));
  const at = (hz) => Math.max(...[-2, -1, 0, 1, 2].map((d) => loudest[bin(hz) + d]));
  return tones.map(at);
}"""


def stats(site: Site) -> dict[str, Any]:
    with ThreadPoolExecutor(1) as pool:  # out of Playwright's event loop
        answer: dict[str, Any] = pool.submit(control.call, Path(site.env["PASSERELLE_CONTROL__SOCKET"]), "GET",
                                             "/stats").result()  # fmt: skip
        return answer


@contextlib.contextmanager
def front(folder: Path, nodes: list[str]) -> Iterator[int]:
    port = free_udp_port()
    with (folder / "kamailio.log").open("wb") as log:
        process = subprocess.Popen(kamailio_command(folder, port, nodes, "-DD", "-E"), stdout=log, stderr=log)
        try:
            time.sleep(1.0)
            assert process.poll() is None, (folder / "kamailio.log").read_text()[-2000:]
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def dial(phone: Phone, front_port: int, code: str) -> None:
    phone.command("dial", f"sip:+33491000000@127.0.0.1:{front_port}")
    time.sleep(1.5)
    phone.command("sndcode", code + "#")


@pytest.mark.e2e
def test_three_nodes_behind_the_front_one_room_a_browser_and_a_node_killed(
    tmp_path: Path, postgres_schema_url: str
) -> None:
    require("kamailio")
    db = make_engine(postgres_schema_url)
    upgrade(db)
    sites: list[Site] = []
    for k, host in enumerate(HOSTS):
        folder = tmp_path / f"node{k}"
        folder.mkdir()
        http = free_port()
        env = env_for(
            folder, PASSERELLE_DATABASE__URL=postgres_schema_url, PASSERELLE_HTTP__LISTEN=f"{host}:{http}",
            PASSERELLE_HTTP__PUBLIC_BASE_URL=f"http://{host}:{http}",
            PASSERELLE_SIP__LISTEN=f"{host}:{free_udp_port()}",
            PASSERELLE_SIP__PROXIES="127.0.0.1/32", PASSERELLE_CONTROL__SOCKET=str(folder / "control.sock"),
            PASSERELLE_SECURITY__SECRET_KEY="the cluster's one key", PASSERELLE_CLUSTER__NODE=f"node{k}",
            PASSERELLE_WEBRTC__HOST_ADDRESSES=host, PASSERELLE_SIP__RTP_PORT_MIN=str(30000 + 2000 * k),
            PASSERELLE_SIP__RTP_PORT_MAX=str(31999 + 2000 * k), PASSERELLE_VIDEO__RTP_PORT_MIN=str(42000 + 1000 * k),
            PASSERELLE_VIDEO__RTP_PORT_MAX=str(42999 + 1000 * k),
        )  # fmt: skip
        sites.append(Site(f"http://{host}:{http}", env, folder, env["PASSERELLE_SIP__LISTEN"]))
    mic = tone_wav(tmp_path / "mic.wav", freq=2000.0, seconds=90)
    phones = [Phone(tmp_path / f"phone{k}", free_udp_port(), free_udp_port(), 38600 + 200 * k,
                    tone(hz, 8000 * 90, 6000, rate=8000)) for k, hz in enumerate(TONES)]  # fmt: skip
    observer = Cluster(session_factory(db), "observer", "", "")
    seen: dict[str, Any] = {}
    try:
        for site in sites:
            site.start()
        conference = sites[0].conference("--lobby", "off")
        room_id = uuid.UUID(conference["id"])
        with front(tmp_path, [s.sip for s in sites]) as port, sync_playwright() as p:
            time.sleep(4.5)  # the front's probes: every node up
            dial(phones[0], port, conference["code"])
            time.sleep(3.0)
            dial(phones[1], port, conference["code"])
            time.sleep(4.0)
            home = observer.home_of(room_id)
            assert home is not None, "no node claimed the room"
            seen["home"] = home.node
            seen["lines"] = [len(stats(s)["lines"]) for s in sites]
            seen["in_call"] = [phones[0].in_call(), phones[1].in_call()]
            # A browser opens the room's link on a node that does not mix it: sent there, it hears both phones.
            homed = int(home.node.removeprefix("node"))
            elsewhere = sites[(homed + 1) % 3]
            browser = p.chromium.launch(executable_path=require("chromium"), args=webrtc_args(mic))
            page = browser.new_page(locale="fr-FR")
            join_room(page, elsewhere, conference["join_url"].replace(sites[0].base, elsewhere.base), "Dr Martin")
            seen["browser_at"] = page.url.split("/room/")[0]
            time.sleep(2.0)
            seen["browser_heard"] = page.evaluate(LISTEN, list(TONES[:2]))
            for phone in phones[:2]:  # what they heard is theirs to keep once they hang up
                phone.command("hangup")
            time.sleep(1.0)
            seen["heard"] = [phone.heard()[-8000 * 3 :] for phone in phones[:2]]
            # The room's node dies, the browser still in its room: the front stops sending it calls, and a live
            # node takes the room over.
            killed = sites[homed]
            assert killed.process is not None
            killed.process.send_signal(signal.SIGKILL)
            killed.process.wait(timeout=10)
            time.sleep(12.0)  # > 10 s without its heartbeat: dead; the front's probes have failed too
            dial(phones[2], port, conference["code"])
            time.sleep(4.0)
            seen["new_home"] = observer.home_of(room_id)
            seen["third_in_call"] = phones[2].in_call()
            browser.close()
    finally:
        for phone in phones:
            phone.stop()
        for site in sites:
            site.stop()
        db.dispose()
    assert seen["in_call"] == [True, True]
    assert sorted(seen["lines"], reverse=True)[:2] == [2, 2], f"the second caller was not relayed: {seen['lines']}"
    for k, other in ((0, 1), (1, 0)):
        level = magnitude_db(np.asarray(seen["heard"][k]), TONES[other], 8000)
        assert level > -35, f"phone {k} did not hear phone {other} ({level:.0f} dB)"
    assert seen["browser_at"] == sites[homed].base, "the browser was not sent to the room's node"
    assert min(seen["browser_heard"]) > -70, f"the browser did not hear both phones: {seen['browser_heard']}"
    new_home = seen["new_home"]
    assert new_home is not None, "nobody took the dead node's room over"
    assert new_home.node != seen["home"]
    assert new_home.epoch == 2
    assert seen["third_in_call"], "the caller after the node's death did not get in"
