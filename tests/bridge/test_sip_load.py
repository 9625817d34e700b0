"""SIPp callers, each typing the conference code with RFC 4733 and staying in the room: 100 at once, 20 s each
(bench/sip.py measures the same against a separate `passerelle serve`, up to 200)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

import bench
from bench.rtp_pcap import write_call_pcap
from rooms import ConferenceDraft
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import tone
from tests.tools import require

CALLER = Path(bench.__file__).with_name("sipp") / "caller.xml"


def run_callers(tmp_path: Path, calls: int, talk_s: float) -> tuple[int, int, str]:
    """Place ``calls`` concurrent SIPp calls into one conference; (SIPp status, most legs in the room, output)."""
    sipp = require("sipp")
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Training", lobby_mode="off"))
    room = str(conference.id)
    pcap = tmp_path / "call.pcap"
    seconds = write_call_pcap(pcap, 1.5, conference.code + "#", tone(700, int(8000 * talk_s), 6000, rate=8000))
    scenario = CALLER.read_text().replace("PCAP_PATH", str(pcap)).replace("TALK_MS", str(int((seconds + 1) * 1000)))
    (tmp_path / "caller.xml").write_text(scenario)

    async def main() -> tuple[int, int, str]:
        async with running(settings, rooms) as stack:
            sipp_process = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(tmp_path / "caller.xml"), "-m", str(calls),
                "-l", str(calls), "-r", "20", "-rp", "1000", "-i", "127.0.0.1", "-p", str(free_port()),
                "-mi", "127.0.0.1", "-mp", str(free_port() // 2 * 2), "-nostdin", "-timeout", "120s",
                cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            peak = 0
            while sipp_process.returncode is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sipp_process.wait(), 0.5)
                peak = max(peak, len(stack.engine.legs_in(room)))
            assert sipp_process.stdout is not None
            output = (await sipp_process.stdout.read()).decode(errors="replace")
            return sipp_process.returncode or 0, peak, output

    return asyncio.run(asyncio.wait_for(main(), 180))


@pytest.mark.e2e
def test_sip_load_callers_enter_codes_and_stay(tmp_path: Path) -> None:
    status, peak, output = run_callers(tmp_path, calls=100, talk_s=20)
    assert status == 0, output[-2000:]
    assert peak == 100, "every caller typed the code and was in the room at once"
