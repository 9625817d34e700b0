"""REGISTER to the provider (trunk.register_s) against SIPp as its registrar: the challenge answered with the
trunk's digest credentials (SIPp checks the digest), the granted interval taken, the binding removed at stop."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from pathlib import Path

import pytest
from aiosipua.registration import RegistrationState

from tests.bridge.stack import free_port, make_rooms, running
from tests.tools import require

SCENARIO = Path(__file__).with_name("sipp") / "registrar.xml"


@pytest.mark.e2e
@pytest.mark.parametrize("password", ["s3cret-trunk", "wrong"])
def test_the_bridge_registers_with_the_trunk_and_unregisters_at_stop(tmp_path: Path, password: str) -> None:
    sipp, registrar = require("sipp"), free_port()
    settings, rooms = make_rooms(
        tmp_path, PASSERELLE_TRUNK__DOMAIN=f"127.0.0.1:{registrar}", PASSERELLE_TRUNK__USERNAME="passerelle-trunk",
        PASSERELLE_TRUNK__PASSWORD=password, PASSERELLE_TRUNK__REGISTER_S="60",
    )  # fmt: skip

    async def run() -> tuple[RegistrationState, int, int | None]:
        provider = await asyncio.create_subprocess_exec(
            sipp, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(registrar), "-m", "1", "-nostdin",
            "-timeout", "40s", "-trace_err",
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # SIPp listening
        async with running(settings, rooms) as stack:
            engine = stack.gateway._engine
            assert engine is not None
            registration = engine.registration
            assert registration is not None
            for _ in range(100):
                if registration.state in (RegistrationState.REGISTERED, RegistrationState.FAILED):
                    break
                await asyncio.sleep(0.05)
            state, granted = registration.state, registration.granted_expires
        if state is RegistrationState.FAILED and provider.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # SIPp ends its scenario after the 403
                provider.kill()
        await asyncio.wait_for(provider.wait(), 20)  # ended by the unregistration at stop
        return state, granted, provider.returncode

    state, granted, status = asyncio.run(asyncio.wait_for(run(), 60))
    if password == "wrong":
        assert state is RegistrationState.FAILED, "a registrar's 403 must leave the bridge unregistered"
        return
    errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*errors.log"))
    assert state is RegistrationState.REGISTERED
    assert granted == 60
    assert status == 0, f"the registrar saw no good digest or no unregistration: {errors[-2000:]}"
