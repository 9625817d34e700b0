"""Dial-out through a SIP trunk: the trunk is a real baresip phone answering on another port. The callee hears
"you are joining the conference", then the room; refusals happen before anything is dialled."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

from bridge.sip.gateway import DialOutError
from rooms import AuditKind, ConferenceDraft
from rooms.errors import ValidationError
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone

RATE = 8000


@pytest.mark.e2e
def test_sip_dial_out_brings_the_callee_into_the_room(tmp_path: Path) -> None:
    callee_port = free_port()
    settings, rooms = make_rooms(
        tmp_path, PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{callee_port}", PASSERELLE_TRUNK__ANSWER_TIMEOUT_S="5"
    )
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="always"))
    room = str(conference.id)
    host = Phone(tmp_path / "host", free_port(), free_port(), 32400, tone(700, RATE * 60, 8000, rate=RATE))
    callee = Phone(tmp_path / "callee", callee_port, free_port(), 32600, tone(1300, RATE * 60, 8000, rate=RATE),
                   answer="auto", keep_sip_port=True)  # fmt: skip
    refusals: list[str] = []

    marks: dict[str, float] = {}

    async def scenario() -> tuple[int, int, str]:
        loop = asyncio.get_running_loop()
        async with running(settings, rooms) as stack:
            marks["host"] = loop.time()
            await stack.dial_in(host, conference.code)
            (waiting,) = await stack.wait_in_lobby(room, 1)
            stack.lobby.admit(waiting)
            assert await stack.wait_for_legs(room, 1) == 1
            for number in ("08 99 12 34 56", "+44 7911 123456", "nonsense"):
                with pytest.raises(ValidationError) as refused:
                    await stack.gateway.dial_out(conference.id, number)
                refusals.append(str(refused.value))
            leg = await stack.gateway.dial_out(conference.id, "06 12 34 56 78")
            in_room = await stack.wait_for_legs(room, 2, limit_s=10)  # after "you are joining the conference"
            marks["both"] = loop.time()
            await asyncio.sleep(4.0)
            marks["callee leaves"] = loop.time()
            await asyncio.to_thread(callee.command, "hangup")
            left = await stack.wait_for_legs(room, 1, limit_s=5)
            # The callee no longer answers by itself: rings until the trunk's answer timeout.
            await asyncio.to_thread(callee.command, "answermode", "manual")
            with pytest.raises(DialOutError, match="no answer within 5 s"):
                await stack.gateway.dial_out(conference.id, "+33612345678")
            await asyncio.to_thread(host.command, "hangup")
            return in_room, left, leg

    try:
        in_room, left, leg = asyncio.run(asyncio.wait_for(scenario(), 90))
        heard_host, heard_callee = host.heard(), callee.heard()
    finally:
        host.stop()
        callee.stop()
    assert leg.startswith("out-")
    assert (in_room, left) == (2, 1)
    assert "premium-rate" in refusals[0]
    assert "not allowed" in refusals[1]
    assert "expected a phone number" in refusals[2]
    joining = heard_callee[: RATE * 2]
    assert np.sqrt(np.mean(joining.astype(np.float64) ** 2)) > 300, "the callee heard no 'joining' message"
    both = slice(int((marks["both"] + 1 - marks["host"]) * RATE), int((marks["callee leaves"] - marks["host"]) * RATE))
    tail_host, tail_callee = heard_host[both], heard_callee[-RATE * 3 :]
    assert len(tail_host) >= RATE * 2
    assert magnitude_db(tail_callee, 700, rate=RATE) > -30, "the callee does not hear the room"
    assert magnitude_db(tail_host, 1300, rate=RATE) > -30, "the room does not hear the callee"
    outcomes = [e.detail["outcome"] for e in rooms.audit_events() if e.kind is AuditKind.DIAL_OUT]
    assert sorted(outcomes) == ["answered", "no-answer"]
    assert all("12 34" not in str(e.detail) for e in rooms.audit_events()), "a number in clear in the audit"


def test_dial_out_without_a_trunk_says_so(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario() -> None:
        async with running(settings, rooms) as stack:
            with pytest.raises(DialOutError, match=r"trunk\.domain: not set"):
                await stack.gateway.dial_out(conference.id, "+33612345678")

    asyncio.run(asyncio.wait_for(scenario(), 30))


@pytest.mark.e2e
def test_dial_out_sends_its_keys_once_answered_then_the_callee_joins(tmp_path: Path) -> None:
    """A callee behind a switchboard: the keys given with the number go out as RFC 4733 events once the call is
    answered, a real baresip phone receives each of them, and the callee is in the room after them."""
    callee_port = free_port()
    settings, rooms = make_rooms(tmp_path, PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{callee_port}")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    callee = Phone(tmp_path / "callee", callee_port, free_port(), 32800, tone(1300, RATE * 60, 8000, rate=RATE),
                   answer="auto", keep_sip_port=True)  # fmt: skip

    async def scenario() -> int:
        async with running(settings, rooms) as stack:
            with pytest.raises(ValidationError, match="0-9"):  # refused before anything is dialled
                await stack.gateway.dial_out(conference.id, "06 12 34 56 78", digits="12a")
            await stack.gateway.dial_out(conference.id, "06 12 34 56 78", digits="4021*#")
            in_room = await stack.wait_for_legs(room, 1, limit_s=15)
            await asyncio.to_thread(callee.command, "hangup")
            return in_room

    try:
        in_room = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        callee.stop()
    assert in_room == 1
    log = (tmp_path / "callee" / "baresip.log").read_text()
    pressed = re.findall(r"received event: '(.)' \(end=0\)", log)
    released = re.findall(r"received event: '(.)' \(end=1\)", log)  # the three ends of a key are one release
    assert "".join(pressed) == "4021*#", log[-2000:]
    assert "".join(released) == "4021*#"
