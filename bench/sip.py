"""Concurrent phone calls against a real ``passerelle serve`` process: SIPp places N calls (PCMU, the conference code
as RFC 4733 digits, then audio), in rooms of a given size, and everyone stays; meanwhile this script samples the
bridge process (CPU of one core per call, memory per call) and asks its control socket for the media clock's late
and skipped ticks and the final-key → in-the-room delays. SIPp's own response times give INVITE → 200.

SIPp runs beside the bridge on the same machine, as the issue asks: its CPU is reported too.

Usage: ``passerelle bench sip [--calls 200] [--room-size 2|20] [--talk-s 40] [--window-s 15] [--rate 20]``
(extra ``PASSERELLE_*`` variables in the environment reach the bridge, e.g. PASSERELLE_MIXER__SAMPLE_RATE_HZ=8000).
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

from bench.rtp_pcap import write_call_pcap
from config import load_settings
from passerelle import control
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory, upgrade

CALLER = Path(__file__).with_name("sipp") / "caller.xml"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    return cpu_seconds_of(Path(f"/proc/{pid}/stat"))  # utime + stime, all threads


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (Python's main thread, the SIP stack's, the executor's…)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            out[name] = out.get(name, 0.0) + cpu_seconds_of(task / "stat")
        except OSError:  # the thread ended meanwhile
            continue
    return out


def core_pct_by_thread(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """% of one core each thread name used between two :func:`thread_seconds` readings."""
    return {name: round((after[name] - before.get(name, 0.0)) / seconds * 100, 1)
            for name in sorted(after) if after[name] - before.get(name, 0.0) > 0}  # fmt: skip


def cpu_seconds_of(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def cpu_jiffies() -> tuple[int, int]:
    """The machine's stolen and total CPU time (/proc/stat): a virtual machine's host taking the CPU away shows as
    late ticks that no code of ours caused."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def scenario(folder: Path, pcaps: list[Path], talk_ms: int, template: Path = CALLER) -> Path:
    """The caller scenario, each call playing its room's capture (chosen by the injection file's field 0);
    ``template``: another caller (bench/front.py's, which follows a proxy's Record-Route)."""
    choose = ['  <nop><action><assignstr assign_to="room" value="[field0]"/>']
    for k in range(len(pcaps)):
        choose.append(f'    <strcmp assign_to="c{k}" variable="room" value="{k}"/>')
        choose.append(f'    <test assign_to="is{k}" variable="c{k}" compare="equal" value="0"/>')
    choose.append("  </action></nop>")
    for k, pcap in enumerate(pcaps):
        choose.append(f'  <nop condexec="is{k}"><action><exec play_pcap_audio="{pcap}"/></action></nop>')
    text = template.read_text().replace("EXTRA_HEADER\n", "")
    start = text.index("  <nop>\n    <action>\n      <exec play_pcap_audio")
    end = text.index("</nop>", start) + len("</nop>")
    text = text[:start] + "\n".join(choose) + text[end:]
    path = folder / "callers.xml"
    path.write_text(text.replace("TALK_MS", str(talk_ms)))
    return path


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run(
    calls: int, room_size: int, talk_s: float, window_s: float, rate: int, profile: Path | None = None
) -> dict[str, Any]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (scripts/test.sh installs sip-tester)")
    folder = Path(tempfile.mkdtemp(prefix="passerelle-bench-sip-"))
    sip_port, sock = free_port(), folder / "control.sock"
    env = {
        **os.environ,
        "PASSERELLE_DATABASE__URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "PASSERELLE_SIP__LISTEN": f"127.0.0.1:{sip_port}",
        "PASSERELLE_SIP__TRANSPORTS": "udp",
        "PASSERELLE_SIP__MAX_CALLS": str(max(calls + 10, 255)),
        "PASSERELLE_HTTP__LISTEN": f"127.0.0.1:{free_port(socket.SOCK_STREAM)}",
        "PASSERELLE_CONTROL__SOCKET": str(sock),
    }
    settings = load_settings(environ=env)
    db = make_engine(settings.database.url.reveal())
    upgrade(db)
    rooms = Rooms(settings, session_factory(db))
    room_count = -(-calls // room_size)
    conferences = [rooms.create_conference(ConferenceDraft(name=f"Bench {k}", lobby_mode="off"))
                   for k in range(room_count)]  # fmt: skip
    db.dispose()
    talk_samples = int(8000 * talk_s)
    pcaps = []
    for k, conference in enumerate(conferences):
        voice = (2000 * np.sin(2 * np.pi * (300 + 7 * k) * np.arange(talk_samples) / 8000)).astype(np.int16)
        pcap = folder / f"room{k}.pcap"
        seconds = write_call_pcap(pcap, 1.5, conference.code + "#", voice)
        pcaps.append(pcap)
    callers = scenario(folder, pcaps, int((seconds + 1) * 1000))
    (folder / "rooms.csv").write_text("SEQUENTIAL\n" + "".join(f"{i // room_size};\n" for i in range(calls)))

    command = [shutil.which("passerelle") or "passerelle", "serve"]
    if profile is not None:  # the whole run under cProfile, written when the bridge stops
        command = [sys.executable, "-m", "cProfile", "-o", str(profile.absolute()), "-m", "passerelle", "serve"]
    bridge = subprocess.Popen(
        command, env=env, cwd=folder,
        stdout=subprocess.DEVNULL, stderr=(folder / "bridge.log").open("w"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if bridge.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"passerelle serve did not start; see {folder / 'bridge.log'}")
            time.sleep(0.2)
        time.sleep(1.0)
        idle_cpu0, idle_t0 = cpu_seconds(bridge.pid), time.monotonic()
        time.sleep(3.0)
        idle_core = (cpu_seconds(bridge.pid) - idle_cpu0) / (time.monotonic() - idle_t0)
        base_rss = rss_mb(bridge.pid)
        caller = subprocess.Popen(
            [sipp, f"127.0.0.1:{sip_port}", "-sf", str(callers), "-inf", str(folder / "rooms.csv"),
             "-m", str(calls), "-l", str(calls), "-r", str(rate), "-rp", "1000", "-i", "127.0.0.1",
             "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2), "-nostdin",
             "-timeout", f"{int(talk_s * 2 + 120)}s", "-trace_rtt", "-rtt_freq", "1", "-trace_err"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        sock_path = Path(sock)
        deadline = time.monotonic() + calls / rate + 30
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                stats = control.call(sock_path, "GET", "/stats", timeout_s=30)
            except (TimeoutError, control.ControlError):  # an overloaded bridge answers late: that is a figure too
                continue
            if stats["legs_in_rooms"] >= calls:
                break
            time.sleep(0.5)
        in_rooms = stats.get("legs_in_rooms", 0)
        time.sleep(2.0)  # settle: the last joiners' prompts end
        threads0, jiffies0 = thread_seconds(bridge.pid), cpu_jiffies()
        before, cpu0, sipp0, t0 = control.call(sock_path, "GET", "/stats", timeout_s=60), cpu_seconds(bridge.pid), \
            cpu_seconds(caller.pid), time.monotonic()  # fmt: skip
        time.sleep(window_s)
        after, cpu1, sipp1, t1 = control.call(sock_path, "GET", "/stats", timeout_s=60), cpu_seconds(bridge.pid), \
            cpu_seconds(caller.pid), time.monotonic()  # fmt: skip
        threads1, jiffies1 = thread_seconds(bridge.pid), cpu_jiffies()
        steady_rss = rss_mb(bridge.pid)
        caller.wait(timeout=talk_s * 2 + 180)
        sipp_status = caller.returncode
    finally:
        for process in (bridge,):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    ticks = after["clock"]["ticks"] - before["clock"]["ticks"]
    late = after["clock"]["late"] - before["clock"]["late"]
    skipped = after["clock"]["skipped"] - before["clock"]["skipped"]
    core = (cpu1 - cpu0) / (t1 - t0)
    rtts = []
    for rtt_file in folder.glob("*_rtt.csv"):
        for line in rtt_file.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 3 and parts[1]:
                rtts.append(float(parts[1]))
    legs = after["legs_in_rooms"]
    return {
        "benchmark": "sip",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "calls": calls,
        "room_size": room_size,
        "rooms": room_count,
        "mixer_rate_hz": settings.mixer.sample_rate_hz,
        "sipp_status": sipp_status,
        "legs_in_rooms_at_peak": in_rooms,
        "legs_in_rooms_during_window": legs,
        "window_s": round(t1 - t0, 1),
        "bridge_idle_core_pct": round(idle_core * 100, 2),
        "bridge_core_pct": round(core * 100, 1),
        "bridge_core_pct_per_call": round((core - idle_core) * 100 / max(legs, 1), 3),
        "bridge_core_pct_by_thread": core_pct_by_thread(threads0, threads1, t1 - t0),
        "sipp_core_pct": round((sipp1 - sipp0) / (t1 - t0) * 100, 1),
        "ticks": ticks,
        "late_ticks_pct": round(100 * late / max(ticks + skipped, 1), 3),
        "stolen_cpu_pct": round(100 * (jiffies1[0] - jiffies0[0]) / max(1, jiffies1[1] - jiffies0[1]), 1),
        "skipped_ticks": skipped,
        "rss_base_mb": round(base_rss, 1),
        "rss_mb": round(steady_rss, 1),
        "rss_per_call_mb": round((steady_rss - base_rss) / max(legs, 1), 3),
        "invite_to_200_ms": {"p50": _percentile(rtts, 0.5), "p95": _percentile(rtts, 0.95), "n": len(rtts)},
        "final_key_to_room_ms": after["join_delay_ms"],
        "folder": str(folder),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench sip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--room-size", type=int, default=2)
    parser.add_argument("--talk-s", type=float, default=40.0, help="each call's audio after its code")
    parser.add_argument("--window-s", type=float, default=15.0, help="the steady-state measurement window")
    parser.add_argument("--rate", type=int, default=20, help="new calls per second")
    parser.add_argument("--profile", type=Path, help="run the bridge under cProfile, writing this file")
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= 4000 or args.room_size < 1:
        parser.error("--calls from 1 to 4000, --room-size at least 1")
    print(json.dumps(run(args.calls, args.room_size, args.talk_s, args.window_s, args.rate, args.profile), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
