"""The room benchmark's load client: N room sockets (``/ws/room/<ticket>``, no media: each sends a real WebRTC offer
made once, without candidates, and never connects its audio) in one process, in rooms of a given size. Once everyone
sees their room full it measures, each phase announced on stdout (``phase <name>``, so that the caller samples the
service's CPU):

- ``idle``: nothing happens for a while; how many messages the pages get anyway;
- ``presence``: in turn, one page per room mutes or unmutes; when each other page of the room sees it;
- ``chat``: one page per room sends a message; when each other page gets it (skipped by a bridge that has no chat).

Usage (by ``bench/room.py``): ``python -m bench.roomclients --base ws://… --tickets FILE --room-size N``. Prints a
last JSON line: delivery times (p50, p95, max, in ms) and counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np


async def make_offer() -> str:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    # No candidates and no end-of-candidates: the bridge waits for them to trickle, as for a page still gathering,
    # and the leg stays in the room (candidates of a closed peer would fail ICE, and the leg leave, in 30 s).
    lines = [line for line in sdp.splitlines() if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
    return "\r\n".join(lines) + "\r\n"


class Page:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse, room: int) -> None:
        self.socket, self.room = socket, room
        self.me: str | None = None
        self.people: list[dict[str, Any]] = []
        self.messages = 0
        self.chat_supported = False
        self.waiters: list[tuple[Any, asyncio.Future[float]]] = []

    def wait_for(self, test: Any) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append((test, future))
        return future

    async def read(self) -> None:
        async for message in self.socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            at = time.perf_counter()
            data = json.loads(message.data)
            self.messages += 1
            if data["type"] == "welcome":
                self.me, self.chat_supported = data["you"], True
            elif data["type"] == "participants":
                self.people = data["list"]
                if self.me is None:  # a bridge from before "welcome": its list marks "you"
                    self.me = next((p["id"] for p in self.people if p.get("you")), None)
            for test, future in list(self.waiters):
                if not future.done() and test(data):
                    future.set_result(at)
                    self.waiters.remove((test, future))


def stats(delays_s: list[float]) -> dict[str, float]:
    ms = np.array(delays_s) * 1000
    return {"n": int(ms.size), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "max_ms": round(float(ms.max()), 2)}  # fmt: skip


async def main(base: str, tickets: list[str], room_size: int, rounds: int, idle_s: float) -> dict[str, Any]:
    sdp = await make_offer()
    # every socket holds its connection: no pool limit (aiohttp's default of 100 left the 101st waiting forever)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    pages: list[Page] = []
    readers = []
    for index, ticket in enumerate(tickets):
        socket = await session.ws_connect(f"{base}/ws/room/{ticket}", heartbeat=None, max_msg_size=0)
        page = Page(socket, index // room_size)
        pages.append(page)
        readers.append(asyncio.create_task(page.read()))
        await socket.send_json({"type": "offer", "sdp": sdp, "muted": False, "pass": None})
    rooms = [pages[i : i + room_size] for i in range(0, len(pages), room_size)]
    deadline = time.monotonic() + 120
    while any(len(p.people) < len(room) for room in rooms for p in room) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    full = sum(1 for room in rooms for p in room if len(p.people) >= len(room))
    await asyncio.sleep(1.0)
    out: dict[str, Any] = {"pages": len(pages), "pages_seeing_their_room_full": full}

    print("phase idle", flush=True)
    before = sum(p.messages for p in pages)
    await asyncio.sleep(idle_s)
    out["idle_messages_per_page_per_s"] = round((sum(p.messages for p in pages) - before) / len(pages) / idle_s, 3)

    print("phase presence", flush=True)
    delays: list[float] = []
    for turn in range(rounds):
        waits = []
        for room in rooms:
            sender = room[turn % len(room)]
            muted = turn // len(room) % 2 == 0
            leg = sender.me

            def seen(data: dict[str, Any], leg: str | None = leg, muted: bool = muted) -> bool:
                return data["type"] == "participants" and any(
                    p["id"] == leg and p["muted"] is muted for p in data["list"])  # fmt: skip

            waits.append((time.perf_counter(), [p.wait_for(seen) for p in room if p is not sender], sender, muted))
        for _, _, sender, muted in waits:
            await sender.socket.send_json({"type": "mute", "muted": muted})
        sent = time.perf_counter()
        for _, futures, _, _ in waits:
            for future in futures:
                try:
                    delays.append(await asyncio.wait_for(future, 10) - sent)
                except TimeoutError:
                    delays.append(10.0)
        await asyncio.sleep(0.3)
    out["presence"] = stats(delays)

    if all(p.chat_supported for p in pages):
        print("phase chat", flush=True)
        delays = []
        for turn in range(rounds):
            pending = []
            for room in rooms:
                sender = room[turn % len(room)]
                text = f"message {turn} of room {sender.room}"

                def got(data: dict[str, Any], text: str = text) -> bool:
                    return bool(data["type"] == "chat" and data["message"]["text"] == text)

                pending.append(([p.wait_for(got) for p in room if p is not sender], sender, text))
            sent = time.perf_counter()
            for _, sender, text in pending:
                await sender.socket.send_json({"type": "chat", "text": text})
            for futures, _, _ in pending:
                for future in futures:
                    try:
                        delays.append(await asyncio.wait_for(future, 10) - sent)
                    except TimeoutError:
                        delays.append(10.0)
            await asyncio.sleep(1.1)  # within the chat's limits (5 a second per participant)
        out["chat"] = stats(delays)
    print("phase done", flush=True)
    for page in pages:
        await page.socket.close()
    for reader in readers:
        reader.cancel()
    await session.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--tickets", type=Path, required=True)
    parser.add_argument("--room-size", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    lines = args.tickets.read_text().split()
    print(json.dumps(asyncio.run(main(args.base, lines, args.room_size, args.rounds, args.idle_s))), flush=True)
