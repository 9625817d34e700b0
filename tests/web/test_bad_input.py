"""Bad input gets a clear 4xx and changes nothing: bodies that are not what they claim, JSON nested past reason,
lone surrogates, local times that do not exist or happen twice; never a 500 or a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from config import Settings
from rooms import ConferenceKind, Rooms
from tests.web import test_site
from tests.web.test_site import GOOD, csrf, run, sign_in
from web import create_app

doctor = test_site.doctor  # the site's accounts, as a fixture of this module too

Client = TestClient[Any, Any]


async def token_header(client: Client, page: str = "/") -> dict[str, str]:
    return {"X-CSRF-Token": await csrf(client, page)}


def planned(rooms: Rooms) -> list[object]:
    return [c for c in rooms.list_conferences(include_ended=True) if c.kind is ConferenceKind.SCHEDULED]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]


@pytest.mark.parametrize("path", ["/login", "/plan", "/personal-room/regenerate"])
def test_forms_that_cannot_be_read_get_a_400(
    settings: Settings, rooms: Rooms, doctor: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(client: Client) -> list[tuple[int, str]]:
        if path != "/login":
            await sign_in(client)
        headers = await token_header(client, "/login" if path == "/login" else "/")
        bodies = [
            ("application/x-www-form-urlencoded", b"username=\xff\xfe&password=\xc3"),  # not UTF-8
            ("multipart/form-data", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n'),
            ("multipart/form-data; boundary=", b"garbage"),
        ]
        out = []
        for content_type, body in bodies:
            response = await client.post(path, data=body, headers={**headers, "Content-Type": content_type},
                                         allow_redirects=False)  # fmt: skip
            out.append((response.status, await response.text()))
        return out

    for status, text in run(settings, rooms, scenario):
        assert status == 400, text
        assert "could not be read" in text
    no_traceback(caplog)


def test_api_refuses_deep_json_and_lone_surrogates(
    settings: Settings, rooms: Rooms, doctor: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(client: Client) -> list[tuple[int, Any]]:
        await sign_in(client)
        headers = {**await token_header(client), "Content-Type": "application/json"}
        deep = "[" * 50_000 + "]" * 50_000
        bodies = [
            '{"name": ' + deep + "}",
            '{"name": ' + "[" * 985 + "]" * 985 + "}",  # just within what the parser takes
            json.dumps({"name": "Consultation \ud800", "start": None}),  # a lone surrogate, valid JSON
            '{"name": "Consultation", "message": "' + "\\udfff" + '"}',
        ]
        out = []
        for body in bodies:
            response = await client.post("/api/v1/conferences", data=body.encode("utf-8", "surrogatepass"),
                                         headers=headers)  # fmt: skip
            out.append((response.status, await response.json()))
        return out

    answers = run(settings, rooms, scenario)
    assert [status for status, _ in answers] == [400, 400, 400, 400], answers
    assert answers[2][1]["errors"] == {"name": "not valid Unicode text"}
    assert answers[3][1]["errors"] == {"message": "not valid Unicode text"}
    assert planned(rooms) == []
    no_traceback(caplog)


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("2027-03-28T02:30", "does not exist that day in Europe/Paris"),  # the clocks go from 02:00 to 03:00
        ("2027-10-31T02:30", "happens twice that day in Europe/Paris"),  # 02:00-03:00 comes twice
    ],
)
def test_api_and_wizard_refuse_local_times_that_do_not_exist_or_happen_twice(
    settings: Settings, rooms: Rooms, doctor: str, start: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(client: Client) -> list[tuple[int, str]]:
        await sign_in(client)
        headers = await token_header(client)
        body = {"name": "Consultation", "start": start, "duration_min": 30, "timezone": "Europe/Paris",
                "participants": {"emails": ["anne.petit@example.org"]}}  # fmt: skip
        api = await client.post("/api/v1/conferences", json=body, headers=headers)
        made = await client.post("/api/v1/conferences", json={**body, "start": "2027-03-27T10:00"}, headers=headers)
        made_id = (await made.json())["id"]
        patch = await client.patch(f"/api/v1/conferences/{made_id}", json={"start": start}, headers=headers)
        day, at = start.split("T")
        form = {**GOOD, "day": day, "at": at, "duration": "30", "timezone": "Europe/Paris",
                "csrf": await csrf(client, "/plan")}  # fmt: skip
        wizard = await client.post("/plan", data=form, allow_redirects=False)
        return [(api.status, await api.text()), (patch.status, await patch.text()),
                (wizard.status, await wizard.text())]  # fmt: skip

    answers = run(settings, rooms, scenario)
    for status, text in answers[:2]:
        assert status == 400, text
        assert message in text
    assert answers[2][0] == 400, answers[2][1][:500]
    assert len(planned(rooms)) == 1, "only the good one was made"
    no_traceback(caplog)


Signed = tuple[asyncio.AbstractEventLoop, Client, dict[str, str]]


@pytest.fixture
def signed_in(settings: Settings, rooms: Rooms, doctor: str) -> Iterator[Signed]:
    """One site and one signed-in client for every example of a property test (the sign-in's password hash and
    the app's start are not what those tests are about), on a loop of their own."""
    loop = asyncio.new_event_loop()

    async def start() -> tuple[Client, dict[str, str]]:
        client: Client = TestClient(TestServer(create_app(settings, rooms), host="127.0.0.1"))
        await client.start_server()
        await sign_in(client)
        return client, {**await token_header(client), "Content-Type": "application/json"}

    client, headers = loop.run_until_complete(start())
    try:
        yield loop, client, headers
    finally:
        loop.run_until_complete(client.close())
        loop.close()


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=300), message=st.text(max_size=500))
def test_any_text_in_a_conference_is_kept_or_refused_never_a_500(signed_in: Signed, name: str, message: str) -> None:
    loop, client, headers = signed_in

    async def scenario() -> int:
        body = json.dumps({"name": name, "message": message}).encode("utf-8", "surrogatepass")
        response = await client.post("/api/v1/conferences", data=body, headers=headers)
        return response.status

    assert loop.run_until_complete(asyncio.wait_for(scenario(), 30)) in (201, 400)


def test_too_many_participants_are_refused_before_any_work_on_them(
    settings: Settings, rooms: Rooms, doctor: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12,000 addresses (241 kB) once took 5.9 s of the event loop: the limit is checked first, nothing is read."""
    import web.planning
    from rooms.contacts import normalise_email

    looked_at: list[str] = []

    def counted(address: str) -> str:
        looked_at.append(address)
        return normalise_email(address)

    monkeypatch.setattr(web.planning, "normalise_email", counted)

    async def scenario(client: Client) -> tuple[int, Any, int]:
        await sign_in(client)
        headers = await token_header(client)
        emails = [f"patient.{n}@example.org" for n in range(12_000)]
        api = await client.post("/api/v1/conferences", json={"name": "Formation", "participants": {"emails": emails}},
                                headers=headers)  # fmt: skip
        form = {**GOOD, "email": "\n".join(emails), "csrf": await csrf(client, "/plan")}
        wizard = await client.post("/plan", data=form, allow_redirects=False)
        return api.status, await api.json(), wizard.status

    status, body, wizard = run(settings, rooms, scenario)
    assert status == 400
    assert "200" in body["errors"]["participants.users"]
    assert wizard == 400
    assert looked_at == [], "addresses were read past the limit"
    assert planned(rooms) == []
