"""`passerelle lobby` talks to the running service over its local socket."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.callflow import Lobby
from bridge.sip.gateway import DialOutError
from passerelle import control
from passerelle.cli import main
from rooms.errors import NotFoundError, ValidationError
from tests.cli.test_serve import env_for, free_port


def test_control_lists_admits_and_denies() -> None:
    async def scenario() -> tuple[object, ...]:
        lobby = Lobby()
        admitted = lobby.wait("sip-1", "conf-a")
        denied = lobby.wait("sip-2", "conf-b")
        async with TestClient(TestServer(control.control_app(lobby), host="127.0.0.1")) as client:
            listed = await (await client.get("/lobby")).json()
            ok = await client.post("/lobby/sip-1/admit")
            no = await client.post("/lobby/sip-2/deny")
            again = await client.post("/lobby/sip-1/admit")
            bad = await client.post("/lobby/sip-1/frobnicate")
            return listed, ok.status, no.status, again.status, (await again.json())["error"], bad.status, \
                admitted.result(), denied.result()  # fmt: skip

    listed, ok, no, again, error, bad, admitted, denied = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert listed == [{"leg": "sip-1", "conference": "conf-a"}, {"leg": "sip-2", "conference": "conf-b"}]
    assert (ok, no, again, bad) == (200, 200, 404, 404)
    assert error == "no caller sip-1 waits in a lobby"
    assert (admitted, denied) == (True, False)


def test_control_dial_out_answers_and_refusals() -> None:
    keys: list[str] = []

    async def dial(conference: str, number: str, digits: str = "") -> str:
        keys.append(digits)
        if number == "busy":
            raise DialOutError("the line is busy")
        if conference == "nope":
            raise NotFoundError(conference)
        if not number.startswith("+"):
            raise ValidationError("number", "expected a phone number")
        return "out-1"

    async def scenario() -> list[tuple[int, object]]:
        async with TestClient(TestServer(control.control_app(Lobby(), dial), host="127.0.0.1")) as client:
            answers = []
            for body in ({"conference": "c1", "number": "+33612345678"}, {"conference": "c1", "number": "busy"},
                         {"conference": "nope", "number": "+33612345678"}, {"conference": "c1", "number": "x"},
                         {"number": "+33612345678"}, "garbage",
                         {"conference": "c1", "number": "+33612345678", "digits": "12#"}):  # fmt: skip
                response = await client.post("/calls", json=body)
                answers.append((response.status, await response.json()))
            return answers

    answers = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert answers[0] == (201, {"leg": "out-1", "conference": "c1", "state": "in the room"})
    assert answers[1] == (502, {"error": "the line is busy"})
    assert answers[2] == (404, {"error": "no conference nope"})
    assert answers[3] == (400, {"error": "number: expected a phone number"})
    assert [status for status, _ in answers[4:6]] == [400, 400]
    assert answers[6][0] == 201
    assert keys[-1] == "12#", "the keys reach the dialler"
    assert keys[0] == "", "none when none were given"


def test_lobby_cli_without_a_running_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSERELLE_CONTROL__SOCKET", str(tmp_path / "none.sock"))
    assert main(["lobby", "list"]) == 2
    assert "no running passerelle answers on" in capsys.readouterr().err


@pytest.mark.e2e
def test_lobby_cli_against_passerelle_serve(tmp_path: Path) -> None:
    sock = tmp_path / "control.sock"
    env = env_for(
        tmp_path, PASSERELLE_HTTP__LISTEN=f"127.0.0.1:{free_port()}", PASSERELLE_SIP__LISTEN=f"127.0.0.1:{free_port()}",
        PASSERELLE_CONTROL__SOCKET=str(sock),
    )  # fmt: skip
    serve = subprocess.Popen(["passerelle", "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            assert serve.poll() is None, "serve exited early"
            time.sleep(0.2)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        listed = subprocess.run(["passerelle", "lobby", "list"], env=env, capture_output=True, text=True, timeout=30)
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == []
        admit = subprocess.run(["passerelle", "lobby", "admit", "sip-9"], env=env, capture_output=True, text=True,
                               timeout=30)  # fmt: skip
        assert admit.returncode == 2
        assert admit.stderr == "passerelle: error: no caller sip-9 waits in a lobby\n"
        conference = subprocess.run(["passerelle", "conference", "create", "--name", "Consultation", "--json"],
                                    env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)  # fmt: skip
        assert conference.returncode == 0, conference.stderr
        conference_id = json.loads(conference.stdout)["id"]
        dial = subprocess.run(["passerelle", "call", "--conference", conference_id, "--number", "+33612345678"],
                              env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
        assert dial.returncode == 2
        assert dial.stderr == "passerelle: error: trunk.domain: not set, so the bridge cannot call out\n"
        premium = subprocess.run(["passerelle", "call", "--conference", conference_id, "--number", "0899123456"],
                                 env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
        assert premium.returncode == 2
        assert "premium-rate" in premium.stderr
    finally:
        serve.terminate()
        serve.communicate(timeout=20)
