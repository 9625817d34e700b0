"""The room's live channel under load, against a real ``passerelle serve``: one room of 200 pages, then 50 rooms of
4 (room sockets without media, :mod:`bench.roomclients`, in another process). Measures the service's CPU while
nothing happens and while pages mute and chat, and the p95 time for a presence change (a mute) and a chat message
to reach every other page of the room.

Usage: ``passerelle bench room [--rounds 20] [--idle-s 10] [--serve-from DIR]`` — ``--serve-from`` runs the bridge
from another checkout (a git worktree of an older commit: the polling channel, which has no chat).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.sip import cpu_seconds
from bench.web import ROOT, bridge, conferences, ticket_for

SHAPES = ((1, 200), (50, 4))  # (rooms, pages per room)


def one_shape(rooms: int, size: int, rounds: int, idle_s: float, serve_from: Path | None) -> dict[str, Any]:
    with bridge(serve_from) as b:
        made = conferences(b.settings, rooms)
        lines = [ticket_for(b.settings, made[i // size], f"page {i}") for i in range(rooms * size)]
        (b.folder / "tickets.txt").write_text("\n".join(lines) + "\n")
        idle0, t0 = cpu_seconds(b.process.pid), time.monotonic()
        time.sleep(3.0)
        empty_core = (cpu_seconds(b.process.pid) - idle0) / (time.monotonic() - t0)
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.roomclients", "--base", f"ws://127.0.0.1:{b.http_port}", "--tickets",
             str(b.folder / "tickets.txt"), "--room-size", str(size), "--rounds", str(rounds), "--idle-s",
             str(idle_s)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=(b.folder / "clients.log").open("w"), text=True,
        )  # fmt: skip
        if client.stdout is None:
            raise SystemExit("the load client has no output")
        marks: dict[str, tuple[float, float]] = {}
        result: dict[str, Any] = {}
        for line in client.stdout:
            if line.startswith("phase "):
                marks[line.split()[1]] = (cpu_seconds(b.process.pid), time.monotonic())
            elif line.startswith("{"):
                result = json.loads(line)
        client.wait(timeout=60)
    phases = list(marks)
    cores = {}
    for start, end in itertools.pairwise(phases):
        (c0, t0), (c1, t1) = marks[start], marks[end]
        cores[f"{start}_core_pct"] = round((c1 - c0) / (t1 - t0) * 100, 2)
    return {"rooms": rooms, "pages_per_room": size, "service_empty_core_pct": round(empty_core * 100, 2),
            **cores, **result}  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench room", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--serve-from", type=Path, help="run the bridge from this checkout instead")
    args = parser.parse_args(argv)
    shapes = [one_shape(rooms, size, args.rounds, args.idle_s, args.serve_from) for rooms, size in SHAPES]
    print(json.dumps({
        "benchmark": "room",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "bridge": "this checkout" if args.serve_from is None else str(args.serve_from),
        "shapes": shapes,
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
