"""A re-INVITE that changes the codec, with SIPp as the caller: the call starts on PCMU, the caller offers only PCMA
and gets PCMA in the 200, and the room goes on hearing it in A-law; then it offers only G.722 (another rate than the
call is mixed at): 488, and the call goes on unharmed in PCMA until its BYE."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.rtp_pcap import write_call_pcap
from bridge.local import BufferLeg
from bridge.rtp.session import RtpLeg
from rooms import ConferenceDraft
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import magnitude_db, tone
from tests.tools import require

SCENARIO = Path(__file__).with_name("sipp") / "reinvite_codec.xml"
BEFORE_HZ, AFTER_HZ = 700, 1100
AMPLITUDE = 8000
FULL_DB = 20 * np.log10(AMPLITUDE / 32768)  # the tones' level: -12.2 dB


@pytest.mark.e2e
def test_a_re_invite_changes_the_codec_and_one_it_cannot_take_is_refused_without_harm(tmp_path: Path) -> None:
    sipp = require("sipp")
    settings, rooms = make_rooms(tmp_path)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    scenario = SCENARIO.read_text()
    for codec, hz, seconds in (("PCMU", BEFORE_HZ, 4.0), ("PCMA", AFTER_HZ, 7.0)):
        pcap = tmp_path / f"{codec}.pcap"
        write_call_pcap(pcap, 0.0, "", tone(hz, int(8000 * seconds), AMPLITUDE, rate=8000), codec=codec)
        scenario = scenario.replace(f"PCAP_{codec}", str(pcap))
    (tmp_path / "reinvite.xml").write_text(scenario)
    listener = BufferLeg("listener", 8000)

    async def run() -> tuple[int | None, RtpLeg, int]:
        async with running(settings, rooms) as stack:
            uri, arrived = stack.gateway.direct_uri(conference.id)  # straight into the room: no voice menu
            user = uri.split(":", 1)[1].split("@", 1)[0]
            stack.engine.join(room, listener)
            caller = await asyncio.create_subprocess_exec(
                sipp, f"127.0.0.1:{stack.port}", "-sf", str(tmp_path / "reinvite.xml"), "-s", user, "-m", "1",
                "-l", "1", "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1",
                "-mp", str(free_port() // 2 * 2), "-nostdin", "-timeout", "40s", "-trace_err",
                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            leg_id = await asyncio.wait_for(arrived, 15)
            await stack.wait_for_legs(room, 2)
            call = stack.gateway._calls[leg_id][0]
            assert isinstance(call.leg, RtpLeg)
            await asyncio.wait_for(caller.wait(), 40)
            left = await stack.wait_for_legs(room, 1, limit_s=3)
            return caller.returncode, call.leg, left

    status, leg, left = asyncio.run(asyncio.wait_for(run(), 60))
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*errors.log"))
    assert status == 0, f"SIPp: a 200 without the codec asked for, or no 488: {errors[-2000:]}"
    assert left == 1, "the caller's leg is still in the room after its BYE"
    session = leg.session
    assert (session.codec.name, session.payload_type) == ("PCMA", 8)
    assert session.errors["payload-type"] == 0, "A-law packets refused: the change did not reach the media"

    heard = listener.recording()
    windows = [heard[k : k + 8000] for k in range(0, len(heard) - 8000 + 1, 8000)]
    before = [k for k, s in enumerate(windows) if magnitude_db(s, BEFORE_HZ, 8000) > FULL_DB - 8]
    after = [k for k, s in enumerate(windows) if magnitude_db(s, AFTER_HZ, 8000) > FULL_DB - 8]
    assert len(before) >= 2, "the room did not hear the caller in μ-law"  # 4 s of it, the joining prompt first
    assert len(after) >= 5, "the room did not hear the caller in A-law, after the change and after the 488"
    assert max(before) <= min(after), "the A-law tone came before the μ-law one"
    clean = [windows[k] for k in after[1:-1]]  # whole seconds of A-law: a clean tone, not μ-law read as A-law
    for second in clean:
        level = magnitude_db(second, AFTER_HZ, 8000)
        noise = np.sqrt(np.mean(second.astype(np.float64) ** 2)) / (AMPLITUDE / np.sqrt(2))
        assert level > FULL_DB - 1.5, f"the A-law tone is weak: {level:.1f} dB"
        assert 0.8 < noise < 1.25, f"the A-law second is not a clean tone (rms {noise:.2f} of the tone's)"
