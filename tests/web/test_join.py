"""The join page over HTTP: links, entry codes, names, windows, guessing, tickets, the network-test endpoints."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from config import Settings
from config.secret import Secret
from rooms import AuditKind, ConferenceDraft, Rooms
from rooms.models import OutboxMessage
from tests.conftest import FakeClock
from web import create_app

Scenario = Callable[[TestClient[Any, Any]], Awaitable[Any]]


def with_client(settings: Settings, rooms: Rooms, scenario: Scenario) -> Any:
    async def main() -> Any:
        async with TestClient(TestServer(create_app(settings, rooms), host="127.0.0.1")) as client:
            return await scenario(client)

    return asyncio.run(asyncio.wait_for(main(), 30))


async def post(client: TestClient[Any, Any], path: str, data: dict[str, str], **kwargs: Any) -> Any:
    """Post a form as the page would: with the CSRF token of the page just loaded (and its cookie)."""
    return await client.post(path, data={**data, "csrf": await csrf_of(client, path)}, **kwargs)


async def csrf_of(client: TestClient[Any, Any], path: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', await (await client.get(path)).text())
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_join_page_in_french_by_default_and_english_on_request(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation Dr Martin", entry_code="4821"))
    link = path_of(conference.join_url)

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, str, str, str]:
        fr = await (await client.get(link)).text()
        en_response = await client.get(link + "?lang=en")
        en = await en_response.text()
        kept = await (await client.get(link)).text()  # the cookie keeps the choice
        browser = await (await client.get(link, headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"},
                                          cookies={})).text()  # fmt: skip
        return fr, en, kept, browser

    fr, en, kept, browser = with_client(settings, rooms, scenario)
    assert '<html lang="fr">' in fr
    assert "Par téléphone :" in fr
    assert conference.code_display + "&nbsp;#" in fr
    assert "Code d'accès" in fr or "Code d&#39;accès" in fr
    assert "4821" not in fr, "the entry code is shown to whoever has the conference link"
    assert '<html lang="en">' in en
    assert "By phone:" in en
    assert '<html lang="en">' in kept
    assert "Consultation Dr Martin" in browser


def test_unknown_links_get_a_clear_404(settings: Settings, rooms: Rooms) -> None:
    async def scenario(client: TestClient[Any, Any]) -> list[tuple[int, str]]:
        out = []
        for path in ("/c/" + "A" * 32, "/i/nope-nope-nope-nope-1", "/c/x"):
            response = await client.get(path)
            out.append((response.status, await response.text()))
        return out

    for status, text in with_client(settings, rooms, scenario):
        assert status == 404
        assert "Lien introuvable" in text
        assert "rejoignez par téléphone" in text


def test_entry_code_checked_then_a_ticket_leads_to_the_room(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", entry_code="4821"))
    link = path_of(conference.join_url)

    async def scenario(client: TestClient[Any, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        wrong = await post(client, link, {"name": "Dr Martin", "entry_code": "1111", "media": "audio"})
        out["wrong"] = (wrong.status, await wrong.text())
        nameless = await post(client, link, {"name": "  \u200b ", "entry_code": "4821"})
        out["nameless"] = (nameless.status, await nameless.text())
        media = await post(client, link, {"name": "Dr Martin", "entry_code": "4821", "media": "hologram"})
        out["media"] = media.status
        right = await post(client, link, {"name": "Dr\x00 Martin\n", "entry_code": "4821", "media": "video"},
                                  allow_redirects=False)  # fmt: skip
        out["right"] = (right.status, right.headers.get("Location", ""))
        room = await client.get(out["right"][1])
        out["room"] = (room.status, await room.text())
        forged = await client.get(out["right"][1][:-3] + "abc")
        out["forged"] = forged.status
        return out

    out = with_client(settings, rooms, scenario)
    assert out["wrong"][0] == 403
    assert "Code d&#39;accès erroné." in out["wrong"][1]
    assert 'value="Dr Martin"' in out["wrong"][1], "the name typed is kept on the page"
    assert out["nameless"][0] == 400
    assert "Indiquez votre nom." in out["nameless"][1]
    assert out["media"] == 400
    assert out["right"][0] == 303
    assert re.fullmatch(r"/room/[A-Za-z0-9_.-]+", out["right"][1])
    assert out["room"][0] == 200
    assert "Vous êtes Dr Martin." in out["room"][1]
    assert out["forged"] == 403
    refused = [e for e in rooms.audit_events() if e.kind is AuditKind.DIAL_IN_REFUSED]
    assert [e.detail["reason"] for e in refused] == ["wrong-entry-code"]


def test_invitee_link_needs_no_entry_code_and_shows_it_for_the_phone(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", entry_code="4821"))
    invitee = rooms.add_invitee(conference.id, "email", "patient@example.org", send_now=False)
    link = path_of(invitee.join_url)

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, int]:
        page = await (await client.get(link)).text()
        joined = await post(client, link, {"name": "Mme Durand", "media": "audio"}, allow_redirects=False)
        return page, joined.status

    page, status = with_client(settings, rooms, scenario)
    assert 'name="entry_code"' not in page
    assert 'puis le code d&#39;accès <strong id="entry-code">4821&nbsp;#</strong>' in page
    assert status == 303


def test_guessing_entry_codes_is_slowed_and_the_right_code_still_gets_in(
    settings: Settings, rooms: Rooms, clock: FakeClock
) -> None:
    rooms.create_user("dr.martin", "Dr Claire Martin", email="claire.martin@example.org")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", entry_code="482193", owner="dr.martin"))
    link = path_of(conference.join_url)
    free = settings.limits.failures_per_caller

    async def scenario(client: TestClient[Any, Any]) -> tuple[list[int], str, str, int, int]:
        statuses = []
        for guess in range(free + 1):
            response = await post(client, link, {"name": "x", "entry_code": f"{100000 + guess}"})
            statuses.append(response.status)
        refused = await post(client, link, {"name": "x", "entry_code": "482193"}, allow_redirects=False)
        text, retry = await refused.text(), refused.headers.get("Retry-After", "")
        clock.advance(timedelta(seconds=int(retry or 0)))
        right = await post(client, link, {"name": "x", "entry_code": "482193"}, allow_redirects=False)
        clock.advance(timedelta(seconds=settings.limits.delay_max_s))
        again = await post(client, link, {"name": "x", "entry_code": "111111"})
        return statuses, text, retry, right.status, again.status

    statuses, text, retry, right, again = with_client(settings, rooms, scenario)
    assert statuses[:free] == [403] * free
    assert statuses[free] == 429, "past the allowance a try must wait its turn"
    assert 0 < int(retry) <= settings.limits.delay_max_s
    assert f"réessayez dans {retry} secondes" in text
    assert right == 303, "once its turn came, the right code got in: no lockout"
    assert again == 403, "a try after the wait is judged"
    guessing = [e for e in rooms.audit_events() if e.kind is AuditKind.CODE_GUESSING]
    assert [e.conference_id for e in guessing] == [conference.id], "the guessing is in the audit trail"
    with rooms.sessions() as s:
        told = s.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "claire.martin@example.org")).all()
    assert len(told) == 1, "the host is told once"
    notice = email.message_from_bytes(told[0].payload, policy=email.policy.default)
    assert "codes d'accès erronés" in str(notice["Subject"])
    assert "482193" not in told[0].payload.decode(), "the notice never carries the code"


def test_conference_window_is_enforced(settings: Settings, rooms: Rooms, clock: FakeClock) -> None:
    """Before its window the page says at once when it opens (weekday, date, time, zone: nothing to type first);
    after it, that it ended, with no form; a page loaded in time and sent too late is refused all the same."""
    start = clock.now + timedelta(days=1)  # Sunday 29 November 2026, 10:00 in Paris
    conference = rooms.create_conference(ConferenceDraft(
        name="Formation", start=start.isoformat(), end=(start + timedelta(hours=1)).isoformat(),
        timezone="Europe/Paris"))  # fmt: skip
    link = path_of(conference.join_url)

    async def join(client: TestClient[Any, Any]) -> tuple[int, str]:
        response = await post(client, link, {"name": "x", "entry_code": conference.entry_code or ""})
        return response.status, await response.text()

    async def page(client: TestClient[Any, Any]) -> str:
        text: str = await (await client.get(link)).text()
        return text

    async def sent_after_the_end(client: TestClient[Any, Any]) -> tuple[int, str]:
        token = await csrf_of(client, link)
        clock.advance(timedelta(hours=2))
        response = await client.post(link, data={"name": "x", "entry_code": conference.entry_code or "", "csrf": token})
        return response.status, await response.text()

    early_page, early = with_client(settings, rooms, page), with_client(settings, rooms, join)
    assert "dimanche 29 novembre 2026, 10:00 – 11:00 (heure : France)" in early_page, "the day, the hours, the zone"
    assert "Elle ouvre à 09:50, 10 minutes avant le début." in early_page, "and when it opens, at once"
    assert 'id="join"' in early_page, "the form is there: the page waits and enters by itself when it opens"
    assert early[0] == 403
    assert "pas encore ouverte : elle ouvre le dimanche 29 novembre 2026, 09:50" in early[1]
    clock.advance(timedelta(days=1))
    late = with_client(settings, rooms, sent_after_the_end)
    assert late[0] == 403
    assert "terminée" in late[1]
    ended_page = with_client(settings, rooms, page)
    assert "Cette conférence est terminée." in ended_page
    assert 'id="join"' not in ended_page, "no form to fill in for a conference that is over"


def test_network_test_endpoints(settings: Settings, rooms: Rooms) -> None:
    async def scenario(client: TestClient[Any, Any]) -> list[tuple[int, int]]:
        out = []
        for query in ("bytes=1000", "bytes=0", "bytes=99999999", "bytes=lots"):
            response = await client.get(f"/api/net/download?{query}")
            out.append((response.status, len(await response.read())))
        ping = await client.get("/api/net/ping")
        out.append((ping.status, 0))
        return out

    out = with_client(settings, rooms, scenario)
    assert out[0] == (200, 1000)
    assert [status for status, _ in out[1:4]] == [400, 400, 400]
    assert out[4][0] == 200


def test_host_link_skips_the_entry_code_and_cannot_be_forged(settings: Settings, rooms: Rooms) -> None:
    from web import tickets
    from web.app import service_key

    keyed = dataclasses.replace(settings, security=dataclasses.replace(settings.security, secret_key=Secret("k" * 64)))
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", entry_code="4821"))
    other = rooms.create_conference(ConferenceDraft(name="Autre"))
    key = service_key(keyed)
    host = "/h/" + tickets.host_token(key, conference.id)
    forged = "/h/" + tickets.host_token(key, other.id).split(".")[0].replace(other.id.hex, conference.id.hex) + "." + \
        tickets.host_token(key, other.id).split(".")[1]  # fmt: skip

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, int, str, int]:
        page = await (await client.get(host)).text()
        joined = await post(client, host, {"name": "Dr Martin", "media": "audio"}, allow_redirects=False)
        location = joined.headers.get("Location", "")
        bad = await client.get(forged)
        return page, joined.status, location, bad.status

    page, status, location, bad = with_client(keyed, rooms, scenario)
    assert 'name="entry_code"' not in page
    assert status == 303
    assert tickets.read(key, location.removeprefix("/room/")).host is True
    assert bad == 404


def test_phone_numbers_are_tel_links_that_dial_the_codes(settings: Settings, rooms: Rooms) -> None:
    """Tapped on a phone, the number dials the conference code after a pause, and the entry code where the reader
    may see it (an invitee's page, the room); the room's line gives the entry code too."""
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", entry_code="4821", lobby_mode="off"))
    invitee = rooms.add_invitee(conference.id, "email", "patient@example.org", send_now=False)
    code = conference.code

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, str, str]:
        public = await (await client.get(path_of(conference.join_url))).text()
        own = await (await client.get(path_of(invitee.join_url))).text()
        joined = await post(client, path_of(invitee.join_url), {"name": "Mme Durand", "media": "audio"})
        return public, own, await joined.text()

    public, own, room = with_client(settings, rooms, scenario)
    assert f'href="tel:+33491000000,,{code}%23"' in public, "the public link's page keeps its entry code to itself"
    assert f'href="tel:+33491000000,,{code}%23,,4821%23"' in own
    assert f'href="tel:+33491000000,,{code}%23,,4821%23"' in room
    assert '<strong id="entry-code">4821&nbsp;#</strong>' in room


def test_listen_only_joins_without_a_microphone_and_stays_muted(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))
    link = path_of(conference.join_url)

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, int, str]:
        page = await (await client.get(link)).text()
        joined = await post(client, link, {"name": "M. Petit", "media": "listen"}, allow_redirects=False)
        room = await (await client.get(joined.headers["Location"])).text()
        bad = await post(client, link, {"name": "M. Petit", "media": "speaker"})
        return page, joined.status, room + str(bad.status)

    page, status, room = with_client(settings, rooms, scenario)
    assert 'value="listen"' in page
    assert status == 303
    assert 'id="listening"' in room
    assert 'id="mute"' not in room, "a listener has nothing to unmute"
    assert '"media": "listen"' in room
    assert room.endswith("400")


def test_a_deleted_conference_says_it_was_cancelled_until_the_retention_purge(settings: Settings, rooms: Rooms,
                                                                              clock: FakeClock) -> None:  # fmt: skip
    from rooms.retention import Retention

    start = clock.now + timedelta(days=1)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", start=start,
                                                         end=start + timedelta(hours=1)))  # fmt: skip
    invitee = rooms.add_invitee(conference.id, "email", "anne.petit@example.org", send_now=False)
    links = [path_of(conference.join_url), path_of(invitee.join_url)]
    rooms.delete_conference(conference.id)

    async def visit(client: TestClient[Any, Any]) -> list[tuple[int, str]]:
        answers = []
        for path in [*links, "/c/" + "x" * 22]:
            response = await client.get(path)
            answers.append((response.status, await response.text()))
        return answers

    (own, theirs, unknown) = with_client(settings, rooms, visit)
    for status, page in (own, theirs):
        assert status == 410
        assert "Conférence annulée" in page
        assert "Consultation" not in page, "nothing is kept that says which conference it was"
    assert unknown[0] == 404
    assert "Conférence annulée" not in unknown[1]
    clock.advance(timedelta(days=settings.retention.invitees_days + 1))
    assert Retention(rooms.sessions, settings, clock).purge()["cancelled_links"] == 2
    assert [status for status, _ in with_client(settings, rooms, visit)] == [404, 404, 404]


def test_the_room_page_sends_a_browser_to_the_node_that_mixes_its_room(settings: Settings, rooms: Rooms,
                                                                        clock: FakeClock) -> None:  # fmt: skip
    """In a cluster: the room claimed by another live node, the page answers 307 to the same path on that node's
    site (tickets are signed with the cluster's one key); a room with no home is claimed by this node and shown."""
    from rooms.cluster import Cluster

    here_room = rooms.create_conference(ConferenceDraft(name="Ici"))
    there_room = rooms.create_conference(ConferenceDraft(name="Là-bas"))
    other = Cluster(rooms.sessions, "node-b", "10.0.0.3:5060", "https://b.visio.example/", now=clock)
    other.heartbeat()
    other.claim(there_room.id)
    here = Cluster(rooms.sessions, "node-a", "10.0.0.2:5060", "https://a.visio.example", now=clock)
    here.heartbeat()
    app = create_app(settings, rooms)
    from web.app import PAGES

    app[PAGES].cluster = here

    async def scenario(client: TestClient[Any, Any]) -> list[tuple[int, str]]:
        out = []
        for conference in (there_room, here_room):
            joined = await post(client, path_of(conference.join_url), {"name": "Dr Martin", "media": "audio"},
                                allow_redirects=False)  # fmt: skip
            room = joined.headers["Location"]
            page = await client.get(room + "?lang=en", allow_redirects=False)
            out.append((page.status, page.headers.get("Location", "") if page.status == 307 else room))
        return out

    async def main() -> list[tuple[int, str]]:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await scenario(client)

    (there_status, there_location), (here_status, _) = asyncio.run(asyncio.wait_for(main(), 30))
    assert there_status == 307
    assert re.fullmatch(r"https://b\.visio\.example/room/[A-Za-z0-9_.-]+\?lang=en", there_location), there_location
    assert here_status == 200
    claimed = here.home_of(here_room.id)
    assert claimed is not None, "the room a browser opened here is not claimed here"
    assert claimed.here
