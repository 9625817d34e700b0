"""The whole phone side of Passerelle in the test process: store, engine on its clock, call flow, SIP gateway."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bridge import Engine, MediaClock
from bridge.callflow import CallFlow, Lobby
from bridge.prompts import PromptLibrary
from bridge.sip.gateway import SipGateway
from config import Settings, load_settings
from rooms import Rooms
from rooms.db import make_engine, session_factory, upgrade
from tests.bridge.phones import Phone


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    settings: Settings
    rooms: Rooms
    engine: Engine
    lobby: Lobby
    port: int
    clock: MediaClock
    outcomes: dict[str, object]
    gateway: SipGateway

    async def wait_for_outcomes(self, count: int, limit_s: float = 30.0) -> dict[str, object]:
        """Wait until ``count`` calls have ended (the bridge hung up or the caller did); leg id → how it ended."""
        for _ in range(int(limit_s / 0.05)):
            if len(self.outcomes) >= count:
                break
            await asyncio.sleep(0.05)
        return dict(self.outcomes)

    async def dial_in(self, phone: Phone, code: str) -> float:
        """The phone dials the public number and types ``code`` and # (RFC 4733) over the welcome prompt; the loop
        time the call was placed (its recording starts then)."""
        placed = asyncio.get_running_loop().time()
        await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{self.port}")
        await asyncio.sleep(1.5)
        await asyncio.to_thread(phone.command, "sndcode", code + "#")
        return placed

    async def wait_in_lobby(self, room: str, count: int, limit_s: float = 10.0) -> list[str]:
        """Until ``count`` callers wait in the room's lobby; the legs that wait."""
        for _ in range(int(limit_s / 0.05)):
            if len(self.lobby.in_room(room)) == count:
                break
            await asyncio.sleep(0.05)
        return self.lobby.in_room(room)

    async def wait_for_legs(self, room: str, count: int, limit_s: float = 15.0) -> int:
        for _ in range(int(limit_s / 0.05)):
            if len(self.engine.legs_in(room)) == count:
                break
            await asyncio.sleep(0.05)
        return len(self.engine.legs_in(room))


def make_rooms(tmp_path: Path, **environ: str) -> tuple[Settings, Rooms]:
    port = free_port()
    settings = load_settings(
        environ={
            "PASSERELLE_DATABASE__URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PASSERELLE_SIP__LISTEN": f"127.0.0.1:{port}",
            **environ,
        }
    )
    db = make_engine(settings.database.url.reveal())
    upgrade(db)
    return settings, Rooms(settings, session_factory(db))


@asynccontextmanager
async def running(settings: Settings, rooms: Rooms) -> AsyncIterator[Stack]:
    loop = asyncio.get_running_loop()
    engine, lobby = Engine(), Lobby()
    flow = CallFlow(
        engine=engine, rooms=rooms, prompts=PromptLibrary(), settings=settings, lobby=lobby, now=loop.time,
    )  # fmt: skip
    gateway = SipGateway(settings, flow)
    outcomes: dict[str, object] = {}
    gateway.on_call_ended = outcomes.__setitem__
    stop = asyncio.Event()
    clock = MediaClock()
    ticking = asyncio.create_task(engine.run(stop, clock))
    await gateway.start()
    try:
        yield Stack(settings, rooms, engine, lobby, settings.sip.listen.port, clock, outcomes, gateway)
    finally:
        stop.set()
        await ticking
        await gateway.close()
