"""Session timers (RFC 4028) with SIPp as the caller: the bridge takes the caller's interval and refresher, says so
in its 200 and requires timer; a refresh is answered; a caller that stops refreshing is hung up (BYE) before its
session runs out, and its leg leaves the room."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from bench.rtp_pcap import write_call_pcap
from rooms import ConferenceDraft
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import tone
from tests.tools import require

SCENARIO = Path(__file__).with_name("sipp") / "session_timer.xml"


@pytest.mark.e2e
def test_a_caller_that_stops_refreshing_its_session_is_hung_up_before_it_expires(tmp_path: Path) -> None:
    sipp = require("sipp")
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    pcap = tmp_path / "call.pcap"
    write_call_pcap(pcap, 0.0, "", tone(700, 8000 * 90, 8000, rate=8000))
    scenario = tmp_path / "session_timer.xml"
    scenario.write_text(SCENARIO.read_text().replace("PCAP", str(pcap)))

    async def run() -> tuple[int | None, int, float, int]:
        async with running(settings, rooms) as stack:
            uri, arrived = stack.gateway.direct_uri(conference.id)  # straight into the room: no voice menu
            user = uri.split(":", 1)[1].split("@", 1)[0]
            caller = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(scenario), "-s", user, "-m", "1", "-l", "1",
                "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2),
                "-nostdin", "-timeout", "100s", "-trace_err",
                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.wait_for(arrived, 15)
            in_room = await stack.wait_for_legs(room, 1)
            refreshed_at = time.monotonic() + 3  # the scenario's UPDATE, 3 s after the ACK
            await asyncio.wait_for(caller.wait(), 100)
            took = time.monotonic() - refreshed_at
            left = await stack.wait_for_legs(room, 0, limit_s=3)
            return caller.returncode, in_room, took, left

    status, in_room, took, left = asyncio.run(asyncio.wait_for(run(), 120))
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*errors.log"))
    assert status == 0, f"SIPp: the 200 lacked the session timer, or no BYE came in time: {errors[-2000:]}"
    assert in_room == 1
    assert 40 < took < 90, f"the BYE came {took:.0f} s after the last refresh (90 s session)"
    assert left == 0, "the expired call's leg is still in the room"
