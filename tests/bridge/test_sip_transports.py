"""SIP over UDP, TCP and TLS (sip.transports, sip.tls_certificate): a real baresip phone calls in over each and
joins the room; SIPp asks OPTIONS over TCP; a transport left out of the settings is not answered."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from rooms import ConferenceDraft
from tests.bridge.phones import Phone
from tests.bridge.stack import free_port, make_rooms, running
from tests.mixer.signals import tone
from tests.tools import require

OPTIONS = Path(__file__).with_name("sipp") / "options.xml"


def sipp_options(tmp_path: Path, port: int, transport: str) -> int:
    sipp = require("sipp")
    return subprocess.run(
        [sipp, f"127.0.0.1:{port}", "-sf", str(OPTIONS), "-m", "1", "-i", "127.0.0.1", "-p", str(free_port()),
         "-t", transport, "-nostdin", "-timeout", "10s"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    ).returncode  # fmt: skip


def self_signed(folder: Path) -> Path:
    openssl = require("openssl")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    both = folder / "sip.pem"
    both.write_text(cert.read_text() + key.read_text())
    return both


@pytest.mark.e2e
def test_sip_calls_over_tcp_and_tls_join_the_room(tmp_path: Path) -> None:
    settings, rooms = make_rooms(
        tmp_path, PASSERELLE_SIP__TRANSPORTS="udp,tcp,tls", PASSERELLE_SIP__TLS_CERTIFICATE=str(self_signed(tmp_path))
    )
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)
    phones = [
        Phone(tmp_path / "tcp", free_port(), free_port(), 33400, tone(700, 8000 * 30, 8000, rate=8000)),
        Phone(tmp_path / "tls", free_port(), free_port(), 33600, tone(1300, 8000 * 30, 8000, rate=8000)),
    ]

    async def scenario() -> tuple[int, list[int]]:
        async with running(settings, rooms) as stack:
            options = await asyncio.to_thread(sipp_options, tmp_path, stack.port, "t1")
            targets = [f"127.0.0.1:{stack.port};transport=tcp", f"127.0.0.1:{stack.port + 1};transport=tls"]
            counts = []
            for k, (phone, target) in enumerate(zip(phones, targets, strict=True)):
                await asyncio.to_thread(phone.command, "dial", f"sip:+33491000000@{target}")
                await asyncio.sleep(1.5)
                await asyncio.to_thread(phone.command, "sndcode", conference.code + "#")
                counts.append(await stack.wait_for_legs(room, k + 1))
            for phone in phones:
                await asyncio.to_thread(phone.command, "hangup")
            return options, counts

    try:
        options, counts = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        for phone in phones:
            phone.stop()
    assert options == 0, "no 200 to OPTIONS over TCP"
    assert counts == [1, 2], "a call over TCP or TLS did not reach the room"


@pytest.mark.e2e
def test_sip_transport_left_out_is_not_answered(tmp_path: Path) -> None:
    settings, rooms = make_rooms(tmp_path, PASSERELLE_SIP__TRANSPORTS="udp")

    async def scenario() -> tuple[int, int]:
        async with running(settings, rooms) as stack:
            udp = await asyncio.to_thread(sipp_options, tmp_path, stack.port, "u1")
            tcp = await asyncio.to_thread(sipp_options, tmp_path, stack.port, "t1")
            return udp, tcp

    udp, tcp = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert udp == 0
    assert tcp != 0, "TCP answered though sip.transports holds only udp"
