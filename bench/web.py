"""Web participants against a real ``passerelle serve`` process: N aiortc clients in another process
(:mod:`bench.webclients`) join rooms of a given size through the real signalling and send pre-encoded Opus (one or
more talkers per room, the others a quiet microphone's noise); this script samples the bridge's CPU (of one core,
per participant, by thread), memory and media clock.

Usage: ``passerelle bench web [--clients 40] [--room-size 4] [--talkers 1] [--window-s 15]``
``--serve-from DIR`` runs the bridge from another checkout (e.g. an older commit in a git worktree), for a before /
after figure with the same clients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.sip import core_pct_by_thread, cpu_seconds, free_port, rss_mb, thread_seconds
from config import Settings, load_settings
from passerelle import control
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory, upgrade
from web import tickets
from web.app import service_key

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Bridge:
    process: subprocess.Popen[bytes]
    settings: Settings
    folder: Path
    http_port: int
    sip_port: int
    socket: Path

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = control.call(self.socket, "GET", "/stats", timeout_s=30)
        return stats


@contextmanager
def bridge(serve_from: Path | None = None, **extra: str) -> Iterator[Bridge]:
    """A ``passerelle serve`` on loopback with its own SQLite file, signed tickets and WebRTC pinned to 127.0.0.1."""
    folder = Path(tempfile.mkdtemp(prefix="passerelle-bench-web-"))
    http_port, sip_port, sock = free_port(socket.SOCK_STREAM), free_port(), folder / "control.sock"
    env = {
        **os.environ,
        "PASSERELLE_DATABASE__URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "PASSERELLE_SIP__LISTEN": f"127.0.0.1:{sip_port}",
        "PASSERELLE_SIP__TRANSPORTS": "udp",
        "PASSERELLE_HTTP__LISTEN": f"127.0.0.1:{http_port}",
        "PASSERELLE_CONTROL__SOCKET": str(sock),
        "PASSERELLE_SECURITY__SECRET_KEY": "bench-" + os.urandom(8).hex(),
        "PASSERELLE_WEBRTC__HOST_ADDRESSES": "127.0.0.1",
        **extra,
    }
    settings = load_settings(environ=env)
    if serve_from is None:  # an older checkout's serve migrates to its own schema (it knows no newer revision)
        upgrade(make_engine(settings.database.url.reveal()))
    command = [shutil.which("passerelle") or "passerelle", "serve"]
    if serve_from is not None:
        command = [sys.executable, "-m", "passerelle", "serve"]
        env["PYTHONPATH"] = str(serve_from.resolve())
    process = subprocess.Popen(
        command, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=(folder / "bridge.log").open("w")
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"passerelle serve did not start; see {folder / 'bridge.log'}")
            time.sleep(0.2)
        time.sleep(1.0)
        yield Bridge(process, settings, folder, http_port, sip_port, sock)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def conferences(settings: Settings, count: int) -> list[Any]:
    db = make_engine(settings.database.url.reveal())
    rooms = Rooms(settings, session_factory(db))
    made = [rooms.create_conference(ConferenceDraft(name=f"Bench {k}", lobby_mode="off")) for k in range(count)]
    db.dispose()
    return made


def ticket_for(settings: Settings, conference: Any, name: str) -> str:
    return tickets.issue(service_key(settings), conference.id, name, "audio", None)


def clients_process(base: str, lines: list[str], seconds: float, folder: Path) -> subprocess.Popen[str]:
    (folder / "tickets.tsv").write_text("".join(line + "\n" for line in lines))
    return subprocess.Popen(
        [sys.executable, "-m", "bench.webclients", "--base", base, "--tickets", str(folder / "tickets.tsv"),
         "--seconds", str(seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=(folder / "clients.log").open("w"), text=True,
    )  # fmt: skip


def run(clients: int, room_size: int, talkers: int, window_s: float, serve_from: Path | None) -> dict[str, Any]:
    room_count = -(-clients // room_size)
    with bridge(serve_from) as b:
        made = conferences(b.settings, room_count)
        lines = [f"{ticket_for(b.settings, made[i // room_size], f'web {i}')}\t{int(i % room_size < talkers)}"
                 for i in range(clients)]  # fmt: skip
        idle0, t0 = cpu_seconds(b.process.pid), time.monotonic()
        time.sleep(3.0)
        idle_core = (cpu_seconds(b.process.pid) - idle0) / (time.monotonic() - t0)
        base_rss = rss_mb(b.process.pid)
        joining_s = clients * 0.1 + 15
        peers = clients_process(f"ws://127.0.0.1:{b.http_port}", lines, joining_s + window_s + 10, b.folder)
        if peers.stdout is not None:
            peers.stdout.readline()  # {"joined": N}: every client started
        deadline, stats = time.monotonic() + joining_s, b.stats()
        while stats["legs_in_rooms"] < clients and time.monotonic() < deadline:
            time.sleep(0.5)
            stats = b.stats()
        in_rooms = stats["legs_in_rooms"]
        time.sleep(3.0)  # settle
        threads0 = thread_seconds(b.process.pid)
        before, cpu0, peers0, t0 = b.stats(), cpu_seconds(b.process.pid), cpu_seconds(peers.pid), time.monotonic()
        time.sleep(window_s)
        after, cpu1, peers1, t1 = b.stats(), cpu_seconds(b.process.pid), cpu_seconds(peers.pid), time.monotonic()
        threads1 = thread_seconds(b.process.pid)
        rss = rss_mb(b.process.pid)
        out, _ = peers.communicate(timeout=joining_s + window_s + 60)
        summary = json.loads(out.strip().splitlines()[-1])
    ticks = after["clock"]["ticks"] - before["clock"]["ticks"]
    late = after["clock"]["late"] - before["clock"]["late"]
    core = (cpu1 - cpu0) / (t1 - t0)
    legs = after["legs_in_rooms"]
    return {
        "benchmark": "web",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "bridge": "this checkout" if serve_from is None else str(serve_from),
        "clients": clients,
        "room_size": room_size,
        "talkers_per_room": talkers,
        "rooms": room_count,
        "legs_in_rooms_at_peak": in_rooms,
        "legs_in_rooms_during_window": legs,
        "window_s": round(t1 - t0, 1),
        "bridge_idle_core_pct": round(idle_core * 100, 2),
        "bridge_core_pct": round(core * 100, 1),
        "bridge_core_pct_per_participant": round((core - idle_core) * 100 / max(legs, 1), 2),
        "bridge_core_pct_by_thread": core_pct_by_thread(threads0, threads1, t1 - t0),
        "clients_core_pct": round((peers1 - peers0) / (t1 - t0) * 100, 1),
        "late_ticks_pct": round(100 * late / max(ticks, 1), 3),
        "rss_per_participant_mb": round((rss - base_rss) / max(legs, 1), 2),
        "clients_summary": summary,
        "folder": str(b.folder),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--room-size", type=int, default=4)
    parser.add_argument("--talkers", type=int, default=1, help="talkers per room; the others send quiet noise")
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--serve-from", type=Path, help="run the bridge from this checkout instead")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or args.room_size < 1 or not 0 <= args.talkers <= args.room_size:
        parser.error("--clients from 1 to 200, --room-size ≥ 1, --talkers from 0 to --room-size")
    print(json.dumps(run(args.clients, args.room_size, args.talkers, args.window_s, args.serve_from), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
