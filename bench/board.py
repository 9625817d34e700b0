"""The room's whiteboard and files under load, against a real ``passerelle serve`` with phone calls in other rooms
(SIPp, as ``bench hostile`` places them): 30 pages in one room (room sockets, their audio offer without candidates:
no media of their own), 5 of them drawing strokes at 20 operations a second each; the service's CPU and the time
from an operation sent to every other page having it (p50 / p95 / max). Then a 25 MB file shared and downloaded
by five pages at once, in MB/s. The media clock's late and skipped ticks in each phase (goal: 0).

Usage: ``passerelle bench board [--calls 20] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
import time
import urllib.parse
from typing import Any

import numpy as np

from bench.hostile import clock, delta, place_calls
from bench.roomclients import make_offer
from bench.sip import cpu_seconds
from bench.web import bridge
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory

PAGES, DRAWERS, RATE = 30, 5, 20


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ms = np.array(values) * 1000
    return {"n": len(values), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(float(ms.max()), 1)}  # fmt: skip


async def drawing(base: str, tickets: list[str], seconds: float, pid: int, sock: Any) -> dict[str, Any]:
    import aiohttp

    sdp = await make_offer()
    sent: dict[tuple[int, int], float] = {}
    delays: list[float] = []
    frames = [0]  # board frames received by all the pages, while drawing
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    sockets = []
    try:
        for ticket in tickets:
            socket = await session.ws_connect(f"{base.replace('http', 'ws')}/ws/room/{ticket}", max_msg_size=0)
            await socket.send_json({"type": "offer", "sdp": sdp})
            sockets.append(socket)

        async def read(index: int, socket: Any) -> None:
            async for message in socket:
                data = json.loads(message.data)
                if data.get("type") != "board-ops":
                    continue
                frames[0] += 1
                for op in data["ops"]:
                    if op.get("op") == "extend":
                        x, y = op["points"][0]
                        key = (round(y * 10), round(x * 1000))
                        if key[0] != index and key in sent:
                            delays.append(time.monotonic() - sent[key])

        readers = [asyncio.create_task(read(i, s)) for i, s in enumerate(sockets)]
        await asyncio.sleep(3.0)  # every page in, its board received

        async def draw(index: int) -> None:
            socket = sockets[index]
            stroke = f"bench-{index}"
            await socket.send_json(
                {
                    "type": "board",
                    "op": "add",
                    "page": 0,
                    "object": {
                        "id": stroke,
                        "kind": "pen",
                        "colour": "#0969da",
                        "width": 4,
                        "points": [[0.5, index / 10]],
                    },
                }
            )
            start = time.monotonic()
            for n in range(1, int(seconds * RATE)):
                due = start + n / RATE
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if n % 300 == 0:  # a stroke has at most 2,000 points: a new one now and then
                    stroke = f"bench-{index}-{n}"
                    await socket.send_json({"type": "board", "op": "add", "page": 0, "object": {
                        "id": stroke, "kind": "pen", "colour": "#0969da", "width": 4,
                        "points": [[0.5, index / 10]]}})  # fmt: skip
                    continue
                sent[(index, n)] = time.monotonic()
                await socket.send_json({"type": "board", "op": "extend", "page": 0, "id": stroke,
                                        "points": [[n / 1000, index / 10]]})  # fmt: skip

        # The same room and calls with nobody drawing: what the media clock does without the board.
        before, cpu0, t0 = await asyncio.to_thread(clock, sock), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds / 2)
        idle = delta(before, await asyncio.to_thread(clock, sock), time.monotonic() - t0)
        idle["service_core_pct"] = round((cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100, 1)
        before, cpu0, t0 = await asyncio.to_thread(clock, sock), cpu_seconds(pid), time.monotonic()
        frames[0] = 0
        await asyncio.gather(*(draw(i) for i in range(DRAWERS)))
        await asyncio.sleep(1.0)
        elapsed = time.monotonic() - t0
        phase = delta(before, await asyncio.to_thread(clock, sock), elapsed)
        cpu = (cpu_seconds(pid) - cpu0) / elapsed
        for reader in readers:
            reader.cancel()
    finally:
        for socket in sockets:
            await socket.close()
        await session.close()
    expected = len(sent) * (PAGES - 1)
    return {"pages": PAGES, "drawing": DRAWERS, "ops_per_s_each": RATE, "service_core_pct": round(cpu * 100, 1),
            "delivered_pct": round(100 * len(delays) / expected, 1) if expected else 0, "delivery": stats(delays),
            "frames_per_s_per_page": round(frames[0] / elapsed / PAGES, 1),
            "clock": phase, "nobody_drawing": idle}  # fmt: skip


async def files(base: str, tickets: list[str], sock: Any, size_mb: int) -> dict[str, Any]:
    import aiohttp

    sdp = await make_offer()
    data = b"%PDF-1.7\n" + os.urandom(size_mb * 2**20 - 9)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:  # cookies of 127.0.0.1
        sockets = []
        for ticket in tickets:
            socket = await session.ws_connect(f"{base.replace('http', 'ws')}/ws/room/{ticket}")
            await socket.send_json({"type": "offer", "sdp": sdp})
            sockets.append(socket)
        await asyncio.sleep(2.0)
        page = await (await session.get(f"{base}/room/{tickets[0]}")).text()
        found = re.search(r'id="room-config">(.*?)</script>', page, re.S)
        if found is None:
            raise SystemExit("the room page has no configuration")
        csrf = json.loads(found.group(1))["csrf"]
        before, t0 = await asyncio.to_thread(clock, sock), time.monotonic()
        answer = await session.post(f"{base}/room/{tickets[0]}/files", data=data, headers={
            "X-File-Name": urllib.parse.quote("bench.pdf"), "X-CSRF-Token": csrf,
            "Content-Type": "application/octet-stream"})  # fmt: skip
        shared = await answer.json()
        up_s = time.monotonic() - t0
        upload = delta(before, await asyncio.to_thread(clock, sock), up_s)
        if answer.status != 201:
            raise SystemExit(f"the upload was refused: {shared}")

        async def fetch(ticket: str) -> int:
            got = await session.get(f"{base}/room/{ticket}/files/{shared['id']}")
            return len(await got.read())

        before, t0 = await asyncio.to_thread(clock, sock), time.monotonic()
        sizes = await asyncio.gather(*(fetch(t) for t in tickets[1:6]))
        down_s = time.monotonic() - t0
        download = delta(before, await asyncio.to_thread(clock, sock), down_s)
        for socket in sockets:
            await socket.close()
    return {"size_mb": size_mb, "upload_mb_per_s": round(size_mb / up_s, 1),
            "downloads": len(sizes), "download_mb_per_s_all": round(sum(sizes) / 2**20 / down_s, 1),
            "all_bytes_back": all(s == len(data) for s in sizes), "clock_upload": upload,
            "clock_downloads": download}  # fmt: skip


def run(calls: int, seconds: float) -> dict[str, Any]:
    with bridge(None, PASSERELLE_SIP__MAX_CALLS="255") as b:
        from web import tickets as room_tickets
        from web.app import service_key

        rooms = Rooms(b.settings, session_factory(make_engine(b.settings.database.url.reveal())))
        room = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))
        key = service_key(b.settings)
        tickets = [room_tickets.issue(key, room.id, f"Stagiaire {n}", "audio", None, host=n == 0) for n in range(PAGES)]
        caller = place_calls(b, rooms, calls)
        try:
            base = f"http://127.0.0.1:{b.http_port}"
            board = asyncio.run(drawing(base, tickets, seconds, b.process.pid, b.socket))
            shared = asyncio.run(files(base, tickets[:6], b.socket, b.settings.files.max_mb))
        finally:
            caller.terminate()
            caller.wait(timeout=30)
    return {
        "benchmark": "board",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "phone_calls": calls,
        "board": board,
        "files": shared,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench board", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.calls, args.seconds), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
