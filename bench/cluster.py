"""Nodes behind the SIP front: N real ``passerelle serve`` (127.0.0.2 …) sharing one PostgreSQL, Kamailio on
127.0.0.1 in front of them, SIPp placing calls through it into rooms of a given size (the code as RFC 4733, then
audio, everyone stays). Kamailio spreads the calls round robin, so most rooms have callers on several nodes: the
room is mixed on the node of its first caller and the others are relayed there. Measured in a steady window: each
node's CPU, legs and phone lines, the final key → room delay of local callers and of relayed ones, Kamailio's CPU.
``--nodes 1`` is the same load through the front on one node alone.

Usage: ``passerelle bench cluster [--nodes 3] [--calls 60] [--room-size 4] [--talk-s 40] [--window-s 15]``, with
``PASSERELLE_TEST_DATABASE_URL`` (scripts/test.sh's PostgreSQL; a scratch schema is made and dropped) or
``--database-url``.
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
from pathlib import Path
from typing import Any

import numpy as np

from bench.front import CALLER, kamailio_command
from bench.rtp_pcap import write_call_pcap
from bench.sip import cpu_jiffies, cpu_seconds, free_port, scenario
from config import load_settings
from passerelle import control
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, scratch_schema, session_factory, upgrade

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")


def _tree_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (Kamailio forks its workers)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == pid or int(fields[1]) == pid:
            total += cpu_seconds(int(proc.name))
    return total


def _node_env(folder: Path, k: int, url: str, secret: str, calls: int) -> dict[str, str]:
    host = HOSTS[k]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PASSERELLE_")}
    http = free_port(socket.SOCK_STREAM)
    return env | {
        "PASSERELLE_DATABASE__URL": url,
        "PASSERELLE_SIP__LISTEN": f"{host}:{free_port()}",
        "PASSERELLE_SIP__TRANSPORTS": "udp",
        "PASSERELLE_SIP__PROXIES": "127.0.0.1/32",
        "PASSERELLE_SIP__MAX_CALLS": str(max(calls * 2 + 10, 255)),
        "PASSERELLE_SIP__RTP_PORT_MIN": str(20000 + 4000 * k),
        "PASSERELLE_SIP__RTP_PORT_MAX": str(23999 + 4000 * k),
        "PASSERELLE_VIDEO__RTP_PORT_MIN": str(40000 + 1000 * k),
        "PASSERELLE_VIDEO__RTP_PORT_MAX": str(40999 + 1000 * k),
        "PASSERELLE_HTTP__LISTEN": f"{host}:{http}",
        "PASSERELLE_HTTP__PUBLIC_BASE_URL": f"http://{host}:{http}",
        "PASSERELLE_CONTROL__SOCKET": str(folder / "control.sock"),
        "PASSERELLE_SECURITY__SECRET_KEY": secret,
        "PASSERELLE_CLUSTER__NODE": f"node{k}",
    }


def run(nodes: int, calls: int, room_size: int, talk_s: float, window_s: float, rate: int, url: str) -> dict[str, Any]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (scripts/test.sh installs sip-tester)")
    folder = Path(tempfile.mkdtemp(prefix="passerelle-bench-cluster-"))
    with scratch_schema(url, "bench") as schema:
        db = make_engine(schema)
        upgrade(db)
        settings = load_settings(environ={"PASSERELLE_DATABASE__URL": schema})
        rooms = Rooms(settings, session_factory(db))
        room_count = -(-calls // room_size)
        conferences = [rooms.create_conference(ConferenceDraft(name=f"Bench {k}", lobby_mode="off"))
                       for k in range(room_count)]  # fmt: skip
        pcaps = []
        for k, conference in enumerate(conferences):
            voice = (2000 * np.sin(2 * np.pi * (300 + 7 * k) * np.arange(int(8000 * talk_s)) / 8000)).astype(np.int16)
            pcap = folder / f"room{k}.pcap"
            seconds = write_call_pcap(pcap, 1.5, conference.code + "#", voice)
            pcaps.append(pcap)
        callers = scenario(folder, pcaps, int((seconds + 1) * 1000), template=CALLER)
        (folder / "rooms.csv").write_text("SEQUENTIAL\n" + "".join(f"{i // room_size};\n" for i in range(calls)))
        secret = os.urandom(16).hex()
        envs, processes = [], []
        try:
            for k in range(nodes):
                node_folder = folder / f"node{k}"
                node_folder.mkdir()
                env = _node_env(node_folder, k, schema, secret, calls)
                envs.append(env)
                log = (node_folder / "serve.log").open("w")
                passerelle = shutil.which("passerelle") or "passerelle"
                processes.append(subprocess.Popen([passerelle, "serve"], env=env, cwd=node_folder,
                                                  stdout=subprocess.DEVNULL, stderr=log))  # fmt: skip
            for env, process in zip(envs, processes, strict=True):
                sock, deadline = Path(env["PASSERELLE_CONTROL__SOCKET"]), time.monotonic() + 40
                while not sock.exists():
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"a node did not start; see {folder}")
                    time.sleep(0.2)
            front_port = free_port()
            front_log = (folder / "kamailio.log").open("w")
            front = subprocess.Popen(
                kamailio_command(folder, front_port, [e["PASSERELLE_SIP__LISTEN"] for e in envs], "-DD", "-E",
                                 "-A", "PIKE_DENSITY=100000"),  # SIPp is one address: not a flood to ban
                stdout=front_log, stderr=front_log,
            )  # fmt: skip
            processes.append(front)
            time.sleep(5.0)  # the nodes up in the front's probes
            caller = subprocess.Popen(
                [sipp, f"127.0.0.1:{front_port}", "-sf", str(callers), "-inf", str(folder / "rooms.csv"),
                 "-m", str(calls), "-l", str(calls), "-r", str(rate), "-rp", "1000", "-i", "127.0.0.1",
                 "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2), "-nostdin",
                 "-timeout", f"{int(talk_s * 2 + 120)}s", "-trace_err"],
                cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            socks = [Path(env["PASSERELLE_CONTROL__SOCKET"]) for env in envs]

            def ask() -> list[dict[str, Any]]:
                return [control.call(s, "GET", "/stats", timeout_s=30) for s in socks]

            deadline = time.monotonic() + calls / rate + 40
            while time.monotonic() < deadline:
                stats = ask()
                if sum(len([x for x in s["lines"] if x["in"] == "room"]) for s in stats) >= calls:
                    break
                time.sleep(0.5)
            time.sleep(2.0)
            before, cpu0 = ask(), [cpu_seconds(p.pid) for p in processes[:nodes]]
            front0, jiffies0, t0 = _tree_seconds(front.pid), cpu_jiffies(), time.monotonic()
            time.sleep(window_s)
            after, cpu1 = ask(), [cpu_seconds(p.pid) for p in processes[:nodes]]
            front1, jiffies1, t1 = _tree_seconds(front.pid), cpu_jiffies(), time.monotonic()
            caller.wait(timeout=talk_s * 2 + 180)
            status = caller.returncode
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            db.dispose()
    span = t1 - t0
    per_node = []
    for k in range(nodes):
        lines = after[k]["lines"]
        ticks = after[k]["clock"]["ticks"] - before[k]["clock"]["ticks"]
        late = after[k]["clock"]["late"] - before[k]["clock"]["late"]
        per_node.append({
            "core_pct": round((cpu1[k] - cpu0[k]) / span * 100, 1),
            "phone_lines": len(lines),
            "legs_in_rooms": after[k]["legs_in_rooms"],
            "late_ticks_pct": round(100 * late / max(ticks, 1), 3),
            "final_key_to_room_ms": after[k]["join_delay_ms"],
            "relayed_key_to_room_ms": after[k]["relay_delay_ms"],
        })  # fmt: skip
    lines_total = sum(n["phone_lines"] for n in per_node)
    core_total = sum(n["core_pct"] for n in per_node)
    return {
        "benchmark": "cluster",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "nodes": nodes,
        "calls": calls,
        "room_size": room_size,
        "sipp_status": status,
        "window_s": round(span, 1),
        "per_node": per_node,
        "phone_lines_total": lines_total,  # callers, plus both ends of each relay
        "relayed_calls": (lines_total - calls) // 2,
        "nodes_core_pct": round(core_total, 1),
        "core_pct_per_call": round(core_total / max(calls, 1), 3),
        "kamailio_core_pct": round((front1 - front0) / span * 100, 2),
        "stolen_cpu_pct": round(100 * (jiffies1[0] - jiffies0[0]) / max(1, jiffies1[1] - jiffies0[1]), 1),
        "folder": str(folder),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--room-size", type=int, default=4)
    parser.add_argument("--talk-s", type=float, default=40.0)
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--rate", type=int, default=10, help="new calls per second")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PASSERELLE_TEST_DATABASE_URL", ""),
        help="PostgreSQL, a scratch schema made in it (default: PASSERELLE_TEST_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= len(HOSTS) or not 1 <= args.calls <= 1000 or args.room_size < 1:
        parser.error(f"--nodes from 1 to {len(HOSTS)}, --calls from 1 to 1000, --room-size at least 1")
    if not args.database_url.startswith("postgresql"):
        parser.error("a PostgreSQL URL: --database-url or PASSERELLE_TEST_DATABASE_URL (scripts/test.sh sets it)")
    print(json.dumps(run(args.nodes, args.calls, args.room_size, args.talk_s, args.window_s, args.rate,
                         args.database_url), indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
