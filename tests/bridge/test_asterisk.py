"""Dial-out through Asterisk's manager interface: an AMI test server takes the Originate and, as the callee
answers, a real baresip phone calls the direct URI into the bridge — straight into the room, no IVR."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.asterisk import AsteriskDialler
from bridge.sip.gateway import DialOutError
from rooms import AuditKind, ConferenceDraft
from tests.bridge.ami_server import AmiServer
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

RATE = 8000


@pytest.mark.e2e
def test_asterisk_originate_connects_the_callee_into_the_conference(tmp_path: Path) -> None:
    ami = AmiServer("passerelle", "s3cret", failing={"+33611111111": "5"})
    callee = Phone(tmp_path / "callee", free_port(), free_port(), 33000, tone(1300, RATE * 60, 8000, rate=RATE))
    host = Phone(tmp_path / "host", free_port(), free_port(), 33200, tone(700, RATE * 60, 8000, rate=RATE))
    dialled: list[str] = []

    def answer(uri: str) -> None:
        dialled.append(uri)
        callee.command("dial", uri)

    ami.answer = answer

    async def scenario() -> tuple[int, int, list[str]]:
        ami_port = await ami.start()
        settings, rooms = make_rooms(
            tmp_path, PASSERELLE_ASTERISK__AMI=f"127.0.0.1:{ami_port}", PASSERELLE_ASTERISK__USERNAME="passerelle",
            PASSERELLE_ASTERISK__SECRET="s3cret", PASSERELLE_TRUNK__ANSWER_TIMEOUT_S="10",
        )  # fmt: skip
        conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="always"))
        room = str(conference.id)
        errors: list[str] = []
        async with running(settings, rooms) as stack:
            dialler = AsteriskDialler(settings, stack.gateway)
            await stack.dial_in(host, conference.code)
            (waiting,) = await stack.wait_in_lobby(room, 1)
            stack.lobby.admit(waiting)
            await stack.wait_for_legs(room, 1)
            leg = await dialler.dial_out(conference.id, "06 12 34 56 78")
            joined = await stack.wait_for_legs(room, 2, limit_s=10)
            await asyncio.sleep(3.0)
            await asyncio.to_thread(callee.command, "hangup")
            await stack.wait_for_legs(room, 1)
            # The direct URI is single use: the same call again lands in the IVR, not in the room.
            await asyncio.to_thread(callee.command, "dial", dialled[0])
            await asyncio.sleep(2.0)
            replayed = len(stack.engine.legs_in(room))
            await asyncio.to_thread(callee.command, "hangup")
            with pytest.raises(DialOutError) as busy:
                await dialler.dial_out(conference.id, "+33 6 11 11 11 11")
            errors.append(str(busy.value))
            bad = AsteriskDialler(settings, stack.gateway)
            ami.secret = "changed"
            with pytest.raises(DialOutError) as refused:
                await bad.dial_out(conference.id, "+33612345678")
            errors.append(str(refused.value))
            await asyncio.to_thread(host.command, "hangup")
            outcomes = sorted(str(e.detail.get("outcome", e.detail.get("reason"))) for e in rooms.audit_events()
                              if e.kind in (AuditKind.DIAL_OUT, AuditKind.DIAL_IN_REFUSED))  # fmt: skip
        await ami.close()
        assert leg.startswith("sip-")
        return joined, replayed, errors + outcomes

    try:
        joined, replayed, said = asyncio.run(asyncio.wait_for(scenario(), 90))
        heard = callee.heard()
        first_call = sorted(callee.dump.glob("*-dec.wav"))[0]
    finally:
        callee.stop()
        host.stop()
    assert joined == 2, "the callee did not reach the room"
    assert replayed == 1, "a used direct URI let a call into the room again"
    assert said[:2] == ["the line is busy", "asterisk.username/secret: the PBX refused the manager login"]
    assert said[2:] == ["answered", "bad-direct-link", "busy", "failed"]
    originate = next(a for a in ami.received if a.get("Action") == "Originate")
    assert originate["Channel"] == "PJSIP/+33612345678@clinic-trunk"
    assert originate["Application"] == "Dial"
    assert originate["Data"].startswith("PJSIP/passerelle/sip:c-")
    assert originate["Async"] == "true"
    assert len(heard) > 0
    tail = Phone.read(first_call)[-RATE * 2 :]
    assert magnitude_db(tail, 700, rate=RATE) > -30, "the callee does not hear the room"
