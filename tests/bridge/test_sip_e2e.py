"""Two real baresip phones dial in — one types the code with RFC 4733, the other as tones in its audio — and
hear each other, never themselves."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import numpy as np
import pytest

from bridge import Engine
from bridge.callflow import CallFlow, Lobby
from bridge.guard import FailureGuard
from bridge.prompts import PromptLibrary
from bridge.sip.gateway import SipGateway, caller_e164
from config import Settings, load_settings
from dtmf.tones import ToneSpec, generate
from rooms import ConferenceDraft, Rooms
from rooms.db import make_engine, session_factory, upgrade
from tests.bridge.phones import Phone
from tests.mixer.signals import magnitude_db, tone


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_caller_number_from_sip_uri() -> None:
    assert caller_e164("sip:+33612345678@192.0.2.1", "FR") == "+33612345678"
    assert caller_e164("sip:0612345678@gw;user=phone", "FR") == "+33612345678"
    assert caller_e164("sip:anonymous@anonymous.invalid", "FR") is None
    assert caller_e164("sip:bot@127.0.0.1", "FR") is None


@pytest.mark.e2e
def test_sip_two_phones_join_by_code_and_hear_each_other(tmp_path: Path) -> None:
    port = free_port()
    settings: Settings = load_settings(
        environ={
            "PASSERELLE_DATABASE__URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PASSERELLE_SIP__LISTEN": f"127.0.0.1:{port}",
        }
    )
    db = make_engine(settings.database.url.reveal())
    upgrade(db)
    rooms = Rooms(settings, session_factory(db))
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    # Phone B types the code as tones inside its microphone: 3 s after answer, then talks (1.3 kHz).
    keys = generate(conference.code + "#", 8000, ToneSpec(on_ms=100, off_ms=100, level_dbm0=-10))
    mic_b = np.concatenate([np.zeros(8000 * 3, np.int16), keys, tone(1300, 8000 * 40, 8000, rate=8000)])
    phones = [
        Phone(tmp_path / "a", free_port(), free_port(), 31000, tone(700, 8000 * 40, 8000, rate=8000)),
        Phone(tmp_path / "b", free_port(), free_port(), 31200, mic_b),
    ]

    async def scenario() -> list[int]:
        loop = asyncio.get_running_loop()
        engine = Engine()
        flow = CallFlow(
            engine=engine, rooms=rooms, prompts=PromptLibrary(), settings=settings, lobby=Lobby(),
            guard=FailureGuard(limit=10, window_s=3600, alarm_per_min=30), now=loop.time,
        )  # fmt: skip
        gateway = SipGateway(settings, flow)
        stop = asyncio.Event()
        ticking = asyncio.create_task(engine.run(stop))
        await gateway.start()
        try:
            counts: list[int] = []
            for k, phone in enumerate(phones):
                await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{port}")
                await asyncio.sleep(2.0)  # answered, the welcome prompt playing
                if k == 0:  # phone A signals its digits with RFC 4733; phone B's are tones in its audio
                    await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
                for _ in range(300):
                    await asyncio.sleep(0.05)
                    if len(engine.legs_in(room)) == len(counts) + 1:
                        break
                counts.append(len(engine.legs_in(room)))
            await asyncio.sleep(4.0)  # both in the room, talking
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            await asyncio.sleep(1.0)
            counts.append(len(engine.legs_in(room)))
            return counts
        finally:
            stop.set()
            await ticking
            await gateway.close()

    try:
        counts = asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        for phone in phones:
            phone.stop()
        db.dispose()
    assert counts == [1, 2, 0]
    a, b = (phone.heard()[-8000 * 3 :] for phone in phones)  # the last seconds: both in the room
    assert magnitude_db(a, 1300, rate=8000) > -30, "phone A does not hear B"
    assert magnitude_db(b, 700, rate=8000) > -30, "phone B does not hear A"
    assert magnitude_db(a, 700, rate=8000) < magnitude_db(a, 1300, rate=8000) - 40, "A hears itself"
    assert magnitude_db(b, 1300, rate=8000) < magnitude_db(b, 700, rate=8000) - 40, "B hears itself"
