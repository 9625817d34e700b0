"""The SIP front (config/kamailio/kamailio.cfg) in front of two nodes, for real: Debian's Kamailio on 127.0.0.1,
two bridges (SIP stack, engine, voice menu) on 127.0.0.2 and 127.0.0.3, SIPp callers from 127.0.0.5. The
configuration passes `kamailio -c`; calls reach a node through it and follow its Record-Route to the end; the node
keys the caller by the address the front saw, not by the front's, and believes that header from the front only; a
draining node (answering the front's OPTIONS with 503) gets no new calls, the other one takes them."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from bench.front import CALLER, kamailio_command
from bench.rtp_pcap import write_call_pcap
from tests.bridge.stack import Stack, free_port, make_rooms, running
from tests.tools import require

NODES = ("127.0.0.2", "127.0.0.3")
CALLER_ADDRESS = "127.0.0.5"


def test_the_front_s_configuration_is_valid(tmp_path: Path) -> None:
    require("kamailio")
    done = subprocess.run(kamailio_command(tmp_path, 5060, ["127.0.0.2:5060"], "-c"), capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "config file ok" in (done.stdout + done.stderr).lower()


@contextlib.asynccontextmanager
async def front(folder: Path, nodes: list[str]) -> AsyncIterator[int]:
    port = free_port()
    log = (folder / "kamailio.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *kamailio_command(folder, port, nodes, "-DD", "-E"), stdout=log, stderr=log
    )
    try:
        await asyncio.sleep(1.0)
        assert process.returncode is None, (folder / "kamailio.log").read_text()[-2000:]
        yield port
    finally:
        process.terminate()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
        log.close()


def caller(folder: Path, name: str, extra_header: str = "", talk_ms: int = 4000) -> Path:
    pcap = folder / f"{name}.pcap"
    seconds = write_call_pcap(pcap, 0.2, "", np.zeros(8000 * (talk_ms // 1000 + 1), np.int16))
    scenario = folder / f"{name}.xml"
    scenario.write_text(CALLER.read_text().replace("EXTRA_HEADER\n", extra_header).replace("PCAP_PATH", str(pcap))
                        .replace("TALK_MS", str(min(talk_ms, int(seconds * 1000)))))  # fmt: skip
    return scenario


async def dial(folder: Path, target: str, scenario: Path, calls: int = 1) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        require("sipp"), target, "-sf", str(scenario), "-m", str(calls), "-l", str(calls), "-r", "5",
        "-i", CALLER_ADDRESS, "-p", str(free_port()), "-mi", CALLER_ADDRESS, "-mp", str(free_port() // 2 * 2),
        "-nostdin", "-timeout", "40s", "-trace_err",
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def sources(stack: Stack) -> list[str | None]:
    return [call.source for call, _ in stack.gateway._calls.values()]


async def wait_for(condition: object, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.e2e
def test_calls_through_the_front_reach_a_node_keyed_by_the_caller_s_address_and_avoid_a_draining_node(
    tmp_path: Path,
) -> None:
    require("sipp")
    if shutil.which("kamailio") is None:
        pytest.fail("kamailio is not installed (scripts/test.sh installs it)")
    ports = [free_port() for _ in NODES]
    nodes = []
    for k, (host, port) in enumerate(zip(NODES, ports, strict=True)):
        folder = tmp_path / f"node{k}"
        folder.mkdir()
        nodes.append(make_rooms(folder, PASSERELLE_SIP__LISTEN=f"{host}:{port}",
                                PASSERELLE_SIP__PROXIES="127.0.0.1/32", PASSERELLE_SIP__TRUSTED_SOURCES="",
                                PASSERELLE_SIP__RTP_PORT_MIN=str(30000 + 2000 * k),
                                PASSERELLE_SIP__RTP_PORT_MAX=str(31999 + 2000 * k)))  # fmt: skip

    async def scenario() -> dict[str, object]:
        seen: dict[str, object] = {}
        async with (
            running(*nodes[0]) as first,
            running(*nodes[1]) as second,
            front(tmp_path, [f"{h}:{p}" for h, p in zip(NODES, ports, strict=True)]) as port,
        ):
            await asyncio.sleep(4.5)  # the front's first OPTIONS probes: both nodes up
            stacks = (first, second)
            # Four calls through the front: spread over both nodes, each keyed by the caller's own address.
            callers = await dial(tmp_path, f"127.0.0.1:{port}", caller(tmp_path, "plain", talk_ms=5000), calls=4)
            await wait_for(lambda: sum(len(s.gateway._calls) for s in stacks) == 4, 15)
            seen["spread"] = [len(s.gateway._calls) for s in stacks]
            seen["sources"] = sorted(str(x) for s in stacks for x in sources(s))
            seen["callers"] = await asyncio.wait_for(callers.wait(), 40)
            seen["ended"] = await wait_for(lambda: sum(len(s.gateway._calls) for s in stacks) == 0, 10)
            # A caller that forges the front's header: the front replaces it; straight to a node, it is not believed.
            forged = caller(tmp_path, "forged", "X-Passerelle-Source: 10.9.9.9:5060\n", talk_ms=3000)
            process = await dial(tmp_path, f"127.0.0.1:{port}", forged)
            await wait_for(lambda: sum(len(s.gateway._calls) for s in stacks) == 1, 15)
            seen["forged_via_front"] = [x for s in stacks for x in sources(s)]
            await asyncio.wait_for(process.wait(), 40)
            await wait_for(lambda: sum(len(s.gateway._calls) for s in stacks) == 0, 10)
            process = await dial(tmp_path, f"{NODES[1]}:{ports[1]}", forged)
            await wait_for(lambda: len(second.gateway._calls) == 1, 15)
            seen["forged_direct"] = sources(second)
            await asyncio.wait_for(process.wait(), 40)
            await wait_for(lambda: sum(len(s.gateway._calls) for s in stacks) == 0, 10)
            # The first node drains: within a few probes the front sends every new call to the other one.
            first.gateway.draining = True
            await asyncio.sleep(6.0)
            callers = await dial(tmp_path, f"127.0.0.1:{port}", caller(tmp_path, "later", talk_ms=3000), calls=4)
            await wait_for(lambda: len(second.gateway._calls) == 4, 15)
            seen["after_drain"] = [len(s.gateway._calls) for s in stacks]
            seen["refused_by_draining"] = first.gateway.refusals["stopping"]
            seen["later_callers"] = await asyncio.wait_for(callers.wait(), 40)
        return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 150))
    errors = "".join(p.read_text(errors="replace")[-1500:] for p in tmp_path.glob("*errors.log"))
    assert seen["callers"] == 0, f"a call through the front failed: {errors}"
    assert seen["spread"] == [2, 2], "the front did not share the calls between the nodes"
    assert seen["sources"] == [CALLER_ADDRESS] * 4, "the node keyed the calls by the front's address"
    assert seen["ended"], "a BYE along the front's route did not end a call"
    assert seen["forged_via_front"] == [CALLER_ADDRESS]
    assert seen["forged_direct"] == [CALLER_ADDRESS], "a caller's own header was believed"
    assert seen["after_drain"] == [0, 4], "the draining node still got calls"
    assert seen["refused_by_draining"] == 0, "the front sent a call to the draining node"
    assert seen["later_callers"] == 0, f"a call after the drain failed: {errors}"
