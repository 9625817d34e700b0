"""The JSON API: its behaviour on SQLite and PostgreSQL, and schemathesis sending what the OpenAPI document allows
(and what it does not) to a live server — never a 5xx, every answer as documented."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestServer

from config import Settings, load_settings
from rooms import Rooms
from rooms.db import make_engine, session_factory, upgrade
from tests.tools import require
from tests.web.test_site import GOOD, PASSWORD
from web import create_app
from web.api import openapi_document


class Live:
    """The site on a port of 127.0.0.1, served from a thread of the test (its own event loop)."""

    def __init__(self, settings: Settings, rooms: Rooms) -> None:
        self.settings, self.rooms = settings, rooms
        self.loop = asyncio.new_event_loop()
        self.server = TestServer(create_app(settings, rooms), host="127.0.0.1")
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Live:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start_server(), self.loop).result(10)
        self.base = f"http://127.0.0.1:{self.server.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def signed_in(self, username: str = "dr.martin") -> requests.Session:
        """A requests session with the site's cookie and the X-CSRF-Token header, as a page's script has them."""
        http = requests.Session()
        page = http.get(f"{self.base}/login", timeout=10).text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
        answer = http.post(f"{self.base}/login", data={"username": username, "password": PASSWORD, "csrf": token},
                           allow_redirects=False, timeout=10)  # fmt: skip
        assert answer.status_code == 303
        page = http.get(f"{self.base}/", timeout=10).text
        http.headers["X-CSRF-Token"] = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
        return http


def accounts(rooms: Rooms) -> None:
    rooms.create_user("dr.martin", "Dr Claire Martin", email="claire.martin@example.org", timezone="Europe/Paris")
    rooms.set_password("dr.martin", PASSWORD)
    rooms.create_user("dr.petit", "Dr Paul Petit", phone="06 12 34 56 78")
    rooms.set_password("dr.petit", PASSWORD)


@pytest.fixture
def live(settings: Settings, rooms: Rooms) -> Iterator[Live]:
    accounts(rooms)
    with Live(settings, rooms) as server:
        yield server


def plan_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": GOOD["name"], "entry_code": "482915", "lobby": "until-host",
                            "start": "2026-12-03T14:30", "duration_min": 45, "timezone": "Europe/Paris",
                            "message": GOOD["message"], "send": "now",
                            "participants": {"users": ["dr.petit"], "emails": ["anne.petit@example.org"],
                                             "phones": ["06 11 22 33 44"]}}  # fmt: skip
    body.update(changes)
    return body


def test_conferences_and_invitations_through_the_api(live: Live) -> None:
    http = live.signed_in()
    api = f"{live.base}/api/v1"
    created = http.post(f"{api}/conferences", json=plan_body(), timeout=10)
    assert created.status_code == 201, created.text
    conference = created.json()
    assert conference["entry_code"] == "482915"
    assert conference["start"].startswith("2026-12-03T13:30")  # 14:30 in Paris, given in UTC
    assert conference["end"].startswith("2026-12-03T14:15")
    page = f"{api}/conferences/{conference['id']}"
    invitations = http.get(f"{page}/invitations", timeout=10).json()
    assert sorted(i["delivery"] for i in invitations) == ["queued"] * 3
    assert sorted(i["kind"] for i in invitations) == ["email", "phone", "user"]
    changed = http.patch(page, json={"name": "RCP décalée", "start": "2026-12-03T15:00"}, timeout=10)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "RCP décalée"
    assert changed.json()["entry_code"] == "482915", "what the change leaves out stays"
    assert changed.json()["end"].startswith("2026-12-03T14:45"), "the duration stays"
    added = http.post(f"{page}/invitations", json={"kind": "email", "address": "b.roux@example.org", "send": False},
                      timeout=10)  # fmt: skip
    assert added.status_code == 201
    assert added.json()["delivery"] == "not-sent"
    again = http.post(f"{page}/invitations", json={"kind": "email", "address": "b.roux@example.org"}, timeout=10)
    assert again.status_code == 409
    sent = http.post(f"{page}/invitations/send", json={}, timeout=10)
    assert sent.json() == {"queued": 1}, "only the one not sent yet"
    assert http.delete(f"{page}/invitations/{added.json()['id']}", timeout=10).status_code == 204
    assert [c["id"] for c in http.get(f"{api}/conferences", timeout=10).json()] == [conference["id"]]
    other = live.signed_in("dr.petit")
    assert other.get(page, timeout=10).status_code == 404, "someone else's conference is not there"
    assert other.delete(page, timeout=10).status_code == 404
    assert http.delete(page, timeout=10).status_code == 204
    assert http.get(page, timeout=10).status_code == 404


def test_bad_requests_get_clear_errors_by_field(live: Live) -> None:
    http = live.signed_in()
    api = f"{live.base}/api/v1/conferences"
    cases = {
        "name": plan_body(name=""),
        "participants.emails": plan_body(participants={"emails": ["nope"]}),
        "participants.phones": plan_body(participants={"phones": [12]}),
        "participants.users": plan_body(participants={"users": ["nobody.here"]}),
        "entry_code": plan_body(entry_code=12),
        "start": plan_body(start="2020-01-01T10:00"),
        "duration_min": plan_body(duration_min=7),
        "send": plan_body(send="2026-12-04T08:00"),
        "timezone": plan_body(timezone="Mars/Olympus"),
        "lobby": plan_body(lobby="garden"),
    }
    for field, body in cases.items():
        answer = http.post(api, json=body, timeout=10)
        assert answer.status_code == 400, field
        assert field in answer.json()["errors"], (field, answer.json())
    assert http.post(api, data="{nope", headers={"Content-Type": "application/json"}, timeout=10).status_code == 400
    assert http.post(api, data="x", headers={"Content-Type": "text/plain"}, timeout=10).status_code == 415
    assert http.post(api, json=[1, 2], timeout=10).status_code == 400
    assert http.post(api, json={"name": "x" * 2_000_000}, timeout=10).status_code == 413
    assert requests.get(api, timeout=10).status_code == 401
    no_token = requests.Session()
    no_token.cookies.update(http.cookies)
    assert no_token.post(api, json=plan_body(), timeout=10).status_code == 403, "no X-CSRF-Token, no change"
    assert http.get(api, timeout=10).json() == [], "nothing was made"


def test_schemathesis_finds_no_server_error_and_nothing_undocumented(tmp_path: Path) -> None:
    """schemathesis (its command line, all its checks) against a live server: examples, boundary values, fuzzed
    and schema-breaking input, and stateful sequences (create, then read, change and delete what was made)."""
    settings = load_settings(environ={"PASSERELLE_DATABASE__URL": f"sqlite:///{tmp_path / 'api.sqlite3'}"})
    engine = make_engine(settings.database.url.reveal())
    upgrade(engine)
    rooms = Rooms(settings, session_factory(engine))
    accounts(rooms)
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(openapi_document(settings)))
    with Live(settings, rooms) as live:
        http = live.signed_in()
        config = tmp_path / "schemathesis.toml"
        config.write_text(
            f'headers = {{ "X-CSRF-Token" = "{http.headers["X-CSRF-Token"]}" }}\n'
            f'[auth.openapi.session]\napi_key = "{http.cookies["psl_session"]}"\n'
            f'[auth.openapi.csrf]\napi_key = "{http.cookies["psl_csrf"]}"\n'
        )
        # Every check but one: a request the schema allows may still be refused for what it means (a date that has
        # passed, an unknown username, a landline given for an SMS), which positive_data_acceptance counts as wrong.
        command = [require("schemathesis"), "--config-file", str(config), "run", str(document), "--url", live.base,
                   "--checks", "all", "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
                   "--seed", "20261129", "--suppress-health-check", "all",
                   "--report", "junit", "--report-dir", str(tmp_path / "report")]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ,
                              "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false"})  # fmt: skip
    engine.dispose()
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout or " passed" in done.stdout, done.stdout[-3000:]
