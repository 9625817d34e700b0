"""The whole phone side of Passerelle in the test process: store, engine on its clock, call flow, SIP gateway."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def audio_offer(formats: str, rtpmaps: str) -> str:
    """An SDP offer of one audio m-line with these payload formats and ``a=rtpmap`` lines (CRLF-ended)."""
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio 40000 RTP/AVP {formats}\r\n{rtpmaps}a=sendrecv\r\n"
    )


def two_phones_talk(
    tmp_path: Path, codecs: tuple[str, ...], rate_hz: int, tones_hz: tuple[float, float], rtp_base: int,
    channels: int = 1,
) -> tuple[list[int], list[str], list[np.ndarray]]:  # fmt: skip
    """Two baresip phones offering ``codecs`` dial in with RFC 4733 codes, each sending its tone at ``rate_hz``,
    and talk 4 s in one room: the legs in the room after each joined, the codec the bridge chose for each, and
    the last 2 s each phone heard (both in the room)."""
    from bridge.rtp.session import RtpLeg
    from rooms import ConferenceDraft
    from tests.mixer.signals import tone

    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    mics = [tone(hz, rate_hz * 30, 6000, rate=rate_hz) for hz in tones_hz]
    ports = [(free_port(), free_port(), rtp_base + 200 * k) for k in range(2)]
    phones = [
        Phone(tmp_path / name, *where, mic, codecs=codecs, rate_hz=rate_hz, channels=channels)
        for name, where, mic in zip("ab", ports, mics, strict=True)
    ]

    async def scenario() -> tuple[list[int], list[str]]:
        async with running(settings, rooms) as stack:
            counts = []
            for k, phone in enumerate(phones):
                await stack.dial_in(phone, conference.code)  # the code as RFC 4733 events
                counts.append(await stack.wait_for_legs(room, k + 1))
            await asyncio.sleep(4.0)
            legs = [call.leg for call, _ in stack.gateway._calls.values()]
            chosen = [leg.session.codec.name for leg in legs if isinstance(leg, RtpLeg)]
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            return counts, chosen

    try:
        counts, chosen = asyncio.run(asyncio.wait_for(scenario(), 60))
        heard = [phone.heard()[-rate_hz * 2 :] for phone in phones]
    finally:
        for phone in phones:
            phone.stop()
    return counts, chosen, heard
