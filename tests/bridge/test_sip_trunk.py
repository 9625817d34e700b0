"""Dial-out through a trunk that rings with a reliable provisional answer (183 with early media, Require: 100rel,
RFC 3262), SIPp as the trunk: the bridge PRACKs it before the 200, ACKs the 200, and the callee is in the room."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from rooms import ConferenceDraft
from tests.bridge.stack import free_port, make_rooms, running
from tests.tools import require

SCENARIO = Path(__file__).with_name("sipp") / "trunk_100rel.xml"


@pytest.mark.e2e
def test_dial_out_pracks_a_trunks_reliable_183_and_the_callee_joins(tmp_path: Path) -> None:
    sipp, trunk = require("sipp"), free_port()
    settings, rooms = make_rooms(tmp_path, PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{trunk}")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def run() -> tuple[str, int | None]:
        provider = await asyncio.create_subprocess_exec(
            sipp, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(trunk), "-m", "1", "-nostdin",
            "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2), "-timeout", "40s", "-trace_err",
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(0.5)
        async with running(settings, rooms) as stack:
            leg = await stack.gateway.dial_out(conference.id, "06 12 34 56 78")
            await asyncio.wait_for(provider.wait(), 30)  # the silent callee is hung up: SIPp's scenario ends
        return leg, provider.returncode

    leg, status = asyncio.run(asyncio.wait_for(run(), 60))
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*errors.log"))
    assert leg.startswith("out-")
    assert status == 0, f"no PRACK for the reliable 183, or no ACK of the 200: {errors[-2000:]}"
