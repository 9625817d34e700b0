"""The media clock while the site is busy and attacked: a real ``passerelle serve`` holds phone calls in two-person
rooms (SIPp, PCMU, talking), then, beside them, the scheduling site's load (:mod:`bench.site`: sign-ins, dashboards,
the wizard, the API) and hostile requests: API bodies with 12,000 participants, JSON nested 50,000 deep, forms that
are not UTF-8 or have no multipart boundary, lone surrogates, nonexistent local times, wrong entry codes on the join
page, and garbage on the room socket. Reports the media clock's late and skipped ticks during each phase (its
control socket's /stats) and every answer's status: the goal is 0 late ticks and no 5xx.

Usage: ``passerelle bench hostile [--calls 40] [--users 10] [--requests 60] [--hostile 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import numpy as np

from bench.rtp_pcap import write_call_pcap
from bench.sip import cpu_jiffies, free_port, scenario
from bench.site import PASSWORD, load, signed_in
from bench.web import Bridge, bridge
from passerelle import control
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory


def clock(sock: Path) -> dict[str, int]:
    stats: dict[str, Any] = control.call(sock, "GET", "/stats", timeout_s=60)
    gc = stats.get("gc") or {"collections": [0, 0, 0], "long": 0}
    steal, total = cpu_jiffies()
    return {"steal": steal, "cpu": total,
            "ticks": stats["clock"]["ticks"], "late": stats["clock"]["late"], "skipped": stats["clock"]["skipped"],
            "legs_in_rooms": stats["legs_in_rooms"], "full_gcs": gc["collections"][2],
            "gcs_over_5ms": gc["long"], "gc_longest_ms": gc.get("longest_ms", 0.0)}  # fmt: skip


def delta(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, Any]:
    ticks = after["ticks"] - before["ticks"]
    return {
        "seconds": round(seconds, 1),
        "ticks": ticks,
        "late": after["late"] - before["late"],
        "skipped": after["skipped"] - before["skipped"],
        "legs_in_rooms": after["legs_in_rooms"],
        "full_gcs": after["full_gcs"] - before["full_gcs"],
        "gcs_over_5ms": after["gcs_over_5ms"] - before["gcs_over_5ms"],
        "gc_longest_ms_so_far": after["gc_longest_ms"],
        "steal_percent": round(100 * (after["steal"] - before["steal"]) / max(1, after["cpu"] - before["cpu"]), 1),
    }


async def hostile(base: str, join_link: str, ticket_page: str, count: int) -> dict[str, int]:
    """``count`` of each kind of hostile request, a few at a time; the answers' statuses, counted."""
    statuses: Counter[str] = Counter()
    http, token, _ = await signed_in(base, "dr.bench0")
    day = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=3)).strftime("%Y-%m-%d")
    many = {"name": "Formation", "start": f"{day}T10:00", "duration_min": 60, "timezone": "Europe/Paris",
            "participants": {"emails": [f"patient.{n}@example.org" for n in range(12_000)]}}  # fmt: skip
    deep = ('{"name": ' + "[" * 50_000 + "]" * 50_000 + "}").encode()
    json_headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
    form_headers = {"X-CSRF-Token": token}

    async def post(kind: str, path: str, **kwargs: Any) -> None:
        async with http.post(f"{base}{path}", allow_redirects=False, **kwargs) as response:
            await response.read()
            statuses[f"{kind} {response.status}"] += 1

    async def socket_garbage() -> None:
        ws_base = base.replace("http", "ws", 1)
        async with aiohttp.ClientSession() as anonymous, anonymous.ws_connect(f"{ws_base}/ws/room/{ticket_page}") as ws:
            for garbage in ("[" * 30_000 + "]" * 30_000, '{"type": "candidate", "candidate": "candidate:x"}'):
                await ws.send_str(garbage)
                message = await ws.receive(timeout=10)
                statuses[f"socket {json.loads(message.data)['type'] if message.type.name == 'TEXT' else 'closed'}"] += 1

    async def wrong_code(i: int) -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as visitor:
            async with visitor.get(f"{base}{join_link}") as page:
                text = await page.text()
            csrf = text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            form = {"csrf": csrf, "name": "x", "entry_code": f"{100000 + i}"}
            async with visitor.post(f"{base}{join_link}", allow_redirects=False, data=form) as answer:
                await answer.read()
                statuses[f"wrong-entry-code {answer.status}"] += 1

    kinds: list[Callable[[int], Awaitable[None]]] = [
        lambda i: post("12000-participants", "/api/v1/conferences", json=many, headers={"X-CSRF-Token": token}),
        lambda i: post("deep-json", "/api/v1/conferences", data=deep, headers=json_headers),
        lambda i: post("lone-surrogate", "/api/v1/conferences", headers=json_headers,
                       data=b'{"name": "x \\ud800"}'),
        lambda i: post("nonexistent-time", "/api/v1/conferences", headers={"X-CSRF-Token": token},
                       json={**many, "participants": {}, "start": "2027-03-28T02:30"}),
        lambda i: post("not-utf8-form", "/plan", data=b"name=\xff\xfe", headers={**form_headers,
                       "Content-Type": "application/x-www-form-urlencoded"}),
        lambda i: post("no-boundary", "/plan", data=b"garbage", headers={**form_headers,
                       "Content-Type": "multipart/form-data"}),
        wrong_code,
        lambda i: socket_garbage(),
    ]  # fmt: skip
    try:
        for i in range(count):
            await asyncio.gather(*(kind(i) for kind in kinds))
    finally:
        await http.close()
    return dict(sorted(statuses.items()))


def place_calls(b: Bridge, rooms: Rooms, calls: int) -> subprocess.Popen[bytes]:
    """``calls`` SIPp callers, two to a room of their own, each talking its own tone after dialling its room's
    code; returns once every one is in its room (or after a deadline). The caller's process is the caller's to
    stop."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (scripts/test.sh installs sip-tester)")
    phones = [rooms.create_conference(ConferenceDraft(name=f"Call {k}", lobby_mode="off"))
              for k in range(-(-calls // 2))]  # fmt: skip
    pcaps = []
    for k, conference in enumerate(phones):
        voice = (2000 * np.sin(2 * np.pi * (300 + 7 * k) * np.arange(8000 * 120) / 8000)).astype(np.int16)
        pcap = b.folder / f"room{k}.pcap"
        seconds = write_call_pcap(pcap, 1.5, conference.code + "#", voice)
        pcaps.append(pcap)
    callers = scenario(b.folder, pcaps, int((seconds + 1) * 1000))
    (b.folder / "rooms.csv").write_text("SEQUENTIAL\n" + "".join(f"{i // 2};\n" for i in range(calls)))
    caller = subprocess.Popen(
        [sipp, f"127.0.0.1:{b.sip_port}", "-sf", str(callers), "-inf", str(b.folder / "rooms.csv"),
         "-m", str(calls), "-l", str(calls), "-r", "10", "-rp", "1000", "-i", "127.0.0.1",
         "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2), "-nostdin",
         "-timeout", "300s"],
        cwd=b.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + calls / 10 + 30
        while clock(b.socket)["legs_in_rooms"] < calls and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2.0)
    except BaseException:
        caller.terminate()
        raise
    return caller


def run(calls: int, users: int, requests: int, count: int) -> dict[str, Any]:
    with bridge(None, PASSERELLE_SIP__MAX_CALLS="255") as b:
        sock = b.socket
        rooms = Rooms(b.settings, session_factory(make_engine(b.settings.database.url.reveal())))
        for i in range(users):
            rooms.create_user(f"dr.bench{i}", f"Dr Bench {i}", email=f"bench{i}@example.org")
            rooms.set_password(f"dr.bench{i}", PASSWORD)
        guarded = rooms.create_conference(ConferenceDraft(name="Guarded", entry_code="482193", lobby_mode="off"))
        from web import tickets
        from web.app import service_key

        ticket = tickets.issue(service_key(b.settings), guarded.id, "Bench", "audio", None)
        caller = place_calls(b, rooms, calls)
        try:
            phases: dict[str, Any] = {}
            base = f"http://127.0.0.1:{b.http_port}"
            before, t0 = clock(sock), time.monotonic()
            time.sleep(10.0)
            phases["calls_alone"] = delta(before, clock(sock), time.monotonic() - t0)
            before, t0 = clock(sock), time.monotonic()
            steps: dict[str, Any] = {}
            mark: dict[str, Any] = {"clock": before, "at": t0}

            def step_ended(name: str) -> None:  # the late ticks of each of the site's steps
                now, at = clock(sock), time.monotonic()
                figures = delta(mark["clock"], now, at - mark["at"])
                steps[name] = {k: figures[k] for k in ("ticks", "late", "skipped", "steal_percent")}
                mark.update(clock=now, at=at)

            site = asyncio.run(load(base, b.process.pid, users, requests, 5, step_ended))
            phases["site_load"] = delta(before, clock(sock), time.monotonic() - t0)
            phases["site_load"]["steps"] = steps
            join = "/c/" + guarded.join_url.rsplit("/", 1)[1]
            before, t0 = clock(sock), time.monotonic()
            answers = asyncio.run(hostile(base, join, ticket, count))
            phases["hostile"] = delta(before, clock(sock), time.monotonic() - t0)
        finally:
            caller.terminate()
            caller.wait(timeout=30)
    server_errors = sum(n for kind, n in answers.items() if kind.rsplit(" ", 1)[-1].startswith("5"))
    return {
        "benchmark": "hostile",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "calls": calls,
        "phases": phases,
        "site_p95_ms": {step: figures["p95_ms"] for step, figures in site.items()},
        "hostile_answers": answers,
        "server_errors": server_errors,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="phone calls held meanwhile (two to a room)")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--requests", type=int, default=60, help="requests per step of the site's load")
    parser.add_argument("--hostile", type=int, default=30, help="rounds of hostile requests (8 kinds each)")
    args = parser.parse_args(argv)
    if not 2 <= args.calls <= 250 or not 1 <= args.users <= 100 or args.requests < 1 or args.hostile < 1:
        parser.error("--calls from 2 to 250, --users from 1 to 100, --requests and --hostile ≥ 1")
    print(json.dumps(run(args.calls, args.users, args.requests, args.hostile), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
