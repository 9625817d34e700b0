"""A phone that vanishes mid-call (its RTP stops, no BYE ever comes): after sip.rtp_timeout_s the bridge closes the
leg, sends BYE, and the room goes on for the others."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

import bench
from bench.rtp_pcap import write_call_pcap
from bridge.callflow import CallOutcome
from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import tone
from tests.tools import require

CALLER = Path(bench.__file__).with_name("sipp") / "caller.xml"
BYE_FROM_BRIDGE = """  <recv request="BYE" timeout="TIMEOUT_MS"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""


def vanishing_scenario(folder: Path, pcap: Path, timeout_ms: int) -> Path:
    """The caller scenario, except that after its audio it goes silent and waits for the bridge's BYE."""
    text = CALLER.read_text().replace("PCAP_PATH", str(pcap))
    cut = text.index('  <pause milliseconds="TALK_MS"/>')
    path = folder / "vanish.xml"
    path.write_text(text[:cut] + BYE_FROM_BRIDGE.replace("TIMEOUT_MS", str(timeout_ms)))
    return path


@pytest.mark.e2e
def test_sip_caller_whose_rtp_stops_is_hung_up_after_the_timeout(tmp_path: Path) -> None:
    sipp = require("sipp")
    settings, rooms = make_rooms(tmp_path, PASSERELLE_SIP__RTP_TIMEOUT_S="5")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    pcap = tmp_path / "call.pcap"
    audio_s = write_call_pcap(pcap, 1.5, conference.code + "#", tone(700, 8000 * 2, 6000, rate=8000))
    scenario = vanishing_scenario(tmp_path, pcap, timeout_ms=int((audio_s + 15) * 1000))
    stayer = Phone(tmp_path / "stayer", free_port(), free_port(), 33800, tone(1300, 8000 * 60, 8000, rate=8000))

    async def scenario_run() -> tuple[int, int, float, dict[str, object], int]:
        loop = asyncio.get_running_loop()
        async with running(settings, rooms) as stack:
            await stack.dial_in(stayer, conference.code)
            await stack.wait_for_legs(room, 1)
            started = loop.time()
            caller = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
                "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2), "-nostdin",
                "-timeout", "60s", cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            peak = 0
            while caller.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(caller.wait(), 0.2)
                peak = max(peak, len(stack.engine.legs_in(room)))
            ended_after = loop.time() - started
            outcomes = await stack.wait_for_outcomes(1, limit_s=5)
            remaining = len(stack.engine.legs_in(room))
            await asyncio.to_thread(stayer.command, "hangup")
            return caller.returncode or 0, peak, ended_after, outcomes, remaining

    try:
        status, peak, ended_after, outcomes, remaining = asyncio.run(asyncio.wait_for(scenario_run(), 90))
    finally:
        stayer.stop()
    assert peak == 2, "the caller never reached the room"
    assert status == 0, "no BYE from the bridge after the caller's RTP stopped"
    assert audio_s + 4 < ended_after < audio_s + 12, f"hung up after {ended_after:.1f} s (audio {audio_s:.1f} s)"
    assert list(outcomes.values()) == [CallOutcome.ENDED]
    assert remaining == 1, "the other participant lost the room"
