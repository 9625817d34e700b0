"""Two real baresip phones dial in — one types the code with RFC 4733, the other as tones in its audio — and
hear each other, never themselves."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bridge.sip.gateway import caller_e164
from dtmf.tones import ToneSpec, generate
from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone
from tests.tools import require


def test_caller_number_from_sip_uri() -> None:
    assert caller_e164("sip:+33612345678@192.0.2.1", "FR") == "+33612345678"
    assert caller_e164("sip:0612345678@gw;user=phone", "FR") == "+33612345678"
    assert caller_e164("sip:anonymous@anonymous.invalid", "FR") is None
    assert caller_e164("sip:bot@127.0.0.1", "FR") is None


@pytest.mark.e2e
def test_sip_two_phones_join_by_code_and_hear_each_other(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
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
        async with running(settings, rooms) as stack:
            counts: list[int] = []
            for k, phone in enumerate(phones):
                await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{stack.port}")
                await asyncio.sleep(2.0)  # answered, the welcome prompt playing
                if k == 0:  # phone A signals its digits with RFC 4733; phone B's are tones in its audio
                    await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
                counts.append(await stack.wait_for_legs(room, k + 1))
            await asyncio.sleep(4.0)  # both in the room, talking
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            counts.append(await stack.wait_for_legs(room, 0, limit_s=3))
            return counts

    try:
        counts = asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        for phone in phones:
            phone.stop()
    assert counts == [1, 2, 0]
    a, b = (phone.heard()[-8000 * 3 :] for phone in phones)  # the last seconds: both in the room
    assert magnitude_db(a, 1300, rate=8000) > -30, "phone A does not hear B"
    assert magnitude_db(b, 700, rate=8000) > -30, "phone B does not hear A"
    assert magnitude_db(a, 700, rate=8000) < magnitude_db(a, 1300, rate=8000) - 40, "A hears itself"
    assert magnitude_db(b, 1300, rate=8000) < magnitude_db(b, 700, rate=8000) - 40, "B hears itself"


MALFORMED = Path(__file__).with_name("sipp") / "malformed.xml"


@pytest.mark.e2e
def test_sip_malformed_messages_then_options_while_a_call_goes_on(tmp_path: Path) -> None:
    """SIPp sends garbage, an INVITE without To/CSeq, a lying Content-Length, then OPTIONS: the bridge answers 200,
    and the call already in its room keeps flowing."""
    sipp = require("sipp")
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    phone = Phone(tmp_path / "a", free_port(), free_port(), 31400, tone(700, 8000 * 40, 8000, rate=8000))

    async def scenario() -> tuple[int, int, int, int]:
        async with running(settings, rooms) as stack:
            await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@127.0.0.1:{stack.port}")
            await asyncio.sleep(2.0)
            await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
            joined = await stack.wait_for_legs(room, 1)
            leg = stack.engine.legs_in(room)[0]
            before = stack.engine.stats(leg).frames_in
            result = await asyncio.to_thread(
                subprocess.run,
                [sipp, f"127.0.0.1:{stack.port}", "-sf", str(MALFORMED), "-m", "1", "-i", "127.0.0.1",
                 "-p", str(free_port()), "-nostdin", "-timeout", "20s", "-bind_local"],
                capture_output=True, text=True, timeout=60, cwd=tmp_path,
            )  # fmt: skip
            await asyncio.sleep(1.0)
            after = stack.engine.stats(leg).frames_in
            await asyncio.to_thread(phone.command, "hangup")
            return joined, result.returncode, before, after

    try:
        joined, sipp_status, before, after = asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        phone.stop()
    assert joined == 1
    assert sipp_status == 0, "no 200 to OPTIONS after the malformed messages"
    assert after - before >= 40, "the call already in the room stopped flowing"
