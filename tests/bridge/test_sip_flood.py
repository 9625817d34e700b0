"""Floods must not take the phone lines: SIPp sends 10 INVITEs a second from one address for 15 s, answered and
never ACKed (the stack would hold each slot 32 s, RFC 3261 timer H); a real caller dialling in the middle of it
still gets in. Anonymous floods are freed by the ACK timeout, one number's by its cap of calls in the menu, one
address's by its own cap."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import pytest

from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import tone
from tests.tools import require

FLOOD = Path(__file__).with_name("sipp") / "flood.xml"
SILENT = FLOOD.with_name("silent.xml")


@pytest.mark.e2e
@pytest.mark.parametrize("from_user", ["anonymous", "+33600000001"])
def test_a_caller_gets_in_during_a_flood_of_invites_never_acked(tmp_path: Path, from_user: str) -> None:
    sipp = require("sipp")
    settings, rooms = make_rooms(tmp_path, PASSERELLE_SIP__MAX_CALLS="45", PASSERELLE_SIP__ACK_TIMEOUT_S="3")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    scenario = tmp_path / "flood.xml"
    scenario.write_text(FLOOD.read_text().replace("FROM_USER", from_user))
    phone = Phone(tmp_path / "phone", free_port(), free_port(), 36200, tone(700, 8000 * 60, 8000, rate=8000))

    async def run() -> tuple[int, int, int | None]:
        async with running(settings, rooms) as stack:
            flood = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(scenario), "-r", "10", "-rp", "1000", "-m", "150",
                "-l", "150", "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1",
                "-mp", str(free_port() // 2 * 2), "-nd", "-nostdin", "-timeout", "40s", "-recv_timeout", "12000",
                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(8.0)  # 80 INVITEs in: without the limits every slot would be held by now
            await stack.dial_in(phone, conference.code)
            joined = await stack.wait_for_legs(str(conference.id), 1, limit_s=15)
            await asyncio.wait_for(flood.wait(), 60)
            return joined, len(stack.engine.legs_in(str(conference.id))), flood.returncode

    try:
        joined, _, flood_status = asyncio.run(asyncio.wait_for(run(), 120))
    finally:
        phone.stop()
    assert flood_status is not None, "SIPp did not finish"
    assert joined == 1, "the real caller was kept out by the flood"


@pytest.mark.e2e
def test_calls_that_ack_and_then_send_nothing_are_hung_up_soon(tmp_path: Path) -> None:
    """Five calls ACKed and then silent (no RTP, no key): each gets a BYE within the first-media timeout (plus the
    answer's margin), long before the 30 s RTP timeout, so a flood of them frees its slots; SIPp exits 0 only if
    every call got its BYE in time."""
    sipp, timeout_s = require("sipp"), 3
    settings, rooms = make_rooms(tmp_path, PASSERELLE_SIP__FIRST_MEDIA_TIMEOUT_S=str(timeout_s))
    assert settings.sip.rtp_timeout_s >= 30
    scenario = tmp_path / "silent.xml"
    scenario.write_text(SILENT.read_text().replace("RECV_MS", str((timeout_s + 4) * 1000)))

    async def run() -> tuple[int | None, int]:
        async with running(settings, rooms) as stack:
            calls = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(scenario), "-r", "5", "-m", "5", "-l", "5",
                "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2),
                "-nd", "-nostdin", "-timeout", "30s",
                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.wait_for(calls.wait(), 40)
            for _ in range(50):  # SIPp exits on the BYE; the call's end reaches the gateway just after
                if len(stack.outcomes) == 5:
                    break
                await asyncio.sleep(0.05)
            return calls.returncode, len(stack.outcomes)

    status, left = asyncio.run(asyncio.wait_for(run(), 60))
    assert status == 0, "a silent call was not hung up within the first-media timeout"
    assert left == 5, "a silent call still holds a slot"


@pytest.mark.e2e
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trunk"])
def test_one_address_past_its_menu_cap_is_refused_while_another_gets_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, trusted: bool
) -> None:
    """Anonymous INVITEs from one address (SIPp on 127.0.0.2), 10 a second: past sip.max_menu_calls_per_source
    calls in the voice menu, each further one gets 486 at once — its number unknown, its address (the packets', not
    a header's) is what counts — while a phone on another address gets in. The same address declared a trunk
    (sip.trusted_sources) carries many callers: not capped."""
    sipp = require("sipp")
    trust = {"PASSERELLE_SIP__TRUSTED_SOURCES": "127.0.0.1,127.0.0.2/32"} if trusted else {}
    settings, rooms = make_rooms(tmp_path, PASSERELLE_SIP__MAX_MENU_CALLS_PER_SOURCE="5", **trust)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    scenario = tmp_path / "flood.xml"
    scenario.write_text(FLOOD.read_text().replace("FROM_USER", "anonymous"))
    phone = Phone(tmp_path / "phone", free_port(), free_port(), 36400, tone(700, 8000 * 60, 8000, rate=8000))

    async def run() -> tuple[int, int | None]:
        async with running(settings, rooms) as stack:
            flood = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(scenario), "-r", "10", "-m", "30", "-l", "30",
                "-i", "127.0.0.2", "-p", str(free_port()), "-mi", "127.0.0.2", "-mp", str(free_port() // 2 * 2),
                "-nd", "-nostdin", "-timeout", "30s", "-recv_timeout", "12000",
                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(2.0)  # 20 INVITEs in, 5 of them in the menu (never ACKed: held 8 s)
            await stack.dial_in(phone, conference.code)
            joined = await stack.wait_for_legs(str(conference.id), 1, limit_s=15)
            await asyncio.wait_for(flood.wait(), 40)
            return joined, flood.returncode

    caplog.set_level(logging.WARNING, logger="bridge.sip.gateway")
    try:
        joined, flood_status = asyncio.run(asyncio.wait_for(run(), 90))
    finally:
        phone.stop()
    refused = [r.getMessage() for r in caplog.records if "already in the voice menu" in r.getMessage()]
    assert flood_status is not None, "SIPp did not finish"
    assert joined == 1, "the phone on another address was kept out"
    if trusted:
        assert refused == [], "a trusted trunk's calls were capped by its address"
        return
    assert len(refused) >= 20, f"only {len(refused)} INVITEs from the one address were refused"
    assert all("from one address" in line and "127.0.0" not in line for line in refused), refused[:1]
