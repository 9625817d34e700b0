"""The professionals' pages over HTTP (SQLite and PostgreSQL): sign-in and its limits, CSRF, the dashboard and
personal room, the wizard's validation keeping every value, conference pages, and what lands in the outbox."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from config import Settings
from notify.outbox import Outbox
from rooms import ConferenceDraft, DeliveryState, Rooms
from rooms.models import Channel, OutboxMessage
from tests.conftest import FakeClock
from web import create_app

PASSWORD = "correct horse battery"
Scenario = Callable[[TestClient[Any, Any]], Awaitable[Any]]


@pytest.fixture
def doctor(rooms: Rooms) -> str:
    rooms.create_user("dr.martin", "Dr Claire Martin", email="claire.martin@example.org", timezone="Europe/Paris")
    rooms.set_password("dr.martin", PASSWORD)
    rooms.create_user("dr.petit", "Dr Paul Petit", phone="06 12 34 56 78")
    rooms.set_password("dr.petit", PASSWORD)
    rooms.create_user("inf.durand", "Sophie Durand", email="sophie.durand@example.org", language="en",
                      timezone="America/Martinique")  # fmt: skip
    return "dr.martin"


def run(settings: Settings, rooms: Rooms, scenario: Scenario) -> Any:
    async def main() -> Any:
        async with TestClient(TestServer(create_app(settings, rooms), host="127.0.0.1")) as client:
            return await scenario(client)

    return asyncio.run(asyncio.wait_for(main(), 60))


async def csrf(client: TestClient[Any, Any], path: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', await (await client.get(path)).text())
    assert found, f"no CSRF token on {path}"
    return found.group(1)


async def post(client: TestClient[Any, Any], path: str, data: Any, *, page: str | None = None) -> Any:
    token = await csrf(client, page or path)
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    return await client.post(path, data=[*fields, ("csrf", token)], allow_redirects=False)


async def sign_in(client: TestClient[Any, Any], username: str = "dr.martin") -> None:
    response = await post(client, "/login", {"username": username, "password": PASSWORD, "next": "/"})
    assert response.status == 303, await response.text()


def outbox(rooms: Rooms) -> list[OutboxMessage]:
    with rooms.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def parsed(message: OutboxMessage) -> EmailMessage:
    result = email.message_from_bytes(message.payload, policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def event_of(message: OutboxMessage) -> Any:
    part = next(p for p in parsed(message).walk() if p.get_content_type() == "text/calendar")
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    calendar = icalendar.Calendar.from_ical(raw)
    return calendar, next(iter(calendar.walk("VEVENT")))


def test_pages_need_a_session_and_the_login_goes_back_where_asked(settings: Settings, rooms: Rooms,
                                                                  doctor: str) -> None:  # fmt: skip
    async def scenario(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/plan", "/api/users?q=dr"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 303
            assert response.headers["Location"].startswith("/login?next=")
        page = await (await client.get("/login?next=/plan")).text()
        assert 'name="next" value="/plan"' in page
        assert "Connexion Portail Régional" not in page, "no portal button without an issuer"
        response = await post(client, "/login", {"username": "DR.MARTIN ", "password": PASSWORD, "next": "/plan"},
                              page="/login?next=/plan")  # fmt: skip
        assert response.status == 303
        assert response.headers["Location"] == "/plan"
        cookie = response.cookies["psl_session"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Lax"
        assert not cookie["secure"], "http site: the cookie must still reach it"
        assert "Dr Claire Martin" in await (await client.get("/")).text()
        # a redirect elsewhere is never followed
        for target in ("//evil.example", "https://evil.example/", "/\\evil.example"):
            response = await post(client, "/login", {"username": "dr.martin", "password": PASSWORD, "next": target},
                                  page="/login")  # fmt: skip
            assert response.headers["Location"] == "/"
        response = await post(client, "/logout", {}, page="/")
        assert response.status == 303
        assert (await client.get("/", allow_redirects=False)).status == 303, "signed out"

    run(settings, rooms, scenario)


def test_wrong_passwords_are_refused_then_slowed_never_locked(
    settings: Settings, rooms: Rooms, doctor: str, clock: FakeClock
) -> None:
    async def scenario(client: TestClient[Any, Any]) -> list[int]:
        unknown = await post(client, "/login", {"username": "nobody", "password": "not the password!"})
        assert "Identifiant ou mot de passe incorrect." in await unknown.text(), "unknown names answer the same"
        statuses = [unknown.status]
        for _ in range(settings.http.login_failures - 1):
            response = await post(client, "/login", {"username": "dr.martin", "password": "not the password!"})
            statuses.append(response.status)
            text = await response.text()
            assert "Identifiant ou mot de passe incorrect." in text
            assert 'value="dr.martin"' in text, "the username typed is kept"
        slowed = await post(client, "/login", {"username": "dr.martin", "password": PASSWORD})
        statuses.append(slowed.status)
        wait = slowed.headers["Retry-After"]
        assert f"réessayez dans {wait} secondes" in await slowed.text()
        assert int(wait) <= settings.limits.delay_max_s
        clock.advance(timedelta(seconds=int(wait)))
        right = await post(client, "/login", {"username": "dr.martin", "password": PASSWORD})
        statuses.append(right.status)  # its turn came: in, after seconds, not an hour
        empty = await post(client, "/login", {"username": "", "password": ""})
        statuses.append(empty.status)
        return statuses

    assert run(settings, rooms, scenario) == [403] * settings.http.login_failures + [429, 303, 400]


def test_guessing_an_account_never_slows_its_owner_on_their_own_browser(
    settings: Settings, rooms: Rooms, doctor: str
) -> None:
    async def scenario(client: TestClient[Any, Any]) -> tuple[list[int], int]:
        await sign_in(client)  # the owner's browser gets its device cookie
        await post(client, "/logout", {}, page="/")
        async with TestClient(TestServer(client.app, host="127.0.0.1")) as attacker:
            guesses = [(await post(attacker, "/login", {"username": "dr.martin", "password": f"guess {n} guess"})
                        ).status for n in range(settings.http.login_failures + 3)]  # fmt: skip
        owner = await post(client, "/login", {"username": "dr.martin", "password": PASSWORD})
        return guesses, owner.status

    guesses, owner = run(settings, rooms, scenario)
    assert 429 in guesses, "the attacker was not slowed"
    assert owner == 303, "the owner's own browser was slowed by someone else's guesses"


@pytest.mark.parametrize("trusted", [True, False])
def test_behind_a_trusted_proxy_clients_are_counted_apart(
    settings: Settings, rooms: Rooms, doctor: str, trusted: bool
) -> None:
    proxied = dataclasses.replace(settings, http=dataclasses.replace(
        settings.http, trusted_proxies=("127.0.0.1",) if trusted else ()))  # fmt: skip

    async def scenario(client: TestClient[Any, Any]) -> tuple[list[int], int]:
        token = await csrf(client, "/login")
        guesses = []
        for n in range(settings.http.login_failures + 2):  # other names each time: only the address is shared
            answer = await client.post("/login", data={"username": f"nobody{n}", "password": "x" * 12, "csrf": token},
                                       headers={"X-Forwarded-For": "203.0.113.5"}, allow_redirects=False)  # fmt: skip
            guesses.append(answer.status)
        other = await client.post("/login", data={"username": "dr.petit", "password": PASSWORD, "csrf": token},
                                  headers={"X-Forwarded-For": "198.51.100.7"}, allow_redirects=False)  # fmt: skip
        return guesses, other.status

    async def main() -> tuple[list[int], int]:
        async with TestClient(TestServer(create_app(proxied, rooms), host="127.0.0.1")) as client:
            return await scenario(client)

    guesses, other = asyncio.run(asyncio.wait_for(main(), 60))
    assert guesses[-1] == 429, "the guessing address was not slowed"
    # Believed from the trusted proxy, the other client's address is its own; from anyone else it is ignored.
    assert other == (303 if trusted else 429)


def test_every_unsafe_request_needs_the_csrf_token(settings: Settings, rooms: Rooms, doctor: str) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", owner="dr.martin"))

    async def scenario(client: TestClient[Any, Any]) -> None:
        await sign_in(client)
        good = await csrf(client, "/")
        for path in ("/plan", "/logout", "/personal-room/regenerate", f"/conferences/{conference.id}/delete",
                     f"/c/{conference.join_url.rsplit('/', 1)[1]}", "/login"):  # fmt: skip
            for token in (None, "", "0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1")):
                data = {"name": "x", "confirm": "yes", **({"csrf": token} if token is not None else {})}
                response = await client.post(path, data=data, allow_redirects=False)
                assert response.status == 403, (path, token)
        # a token without its cookie (another browser's page) is refused too
        client.session.cookie_jar.clear(lambda c: c.key == "psl_csrf")
        response = await client.post("/logout", data={"csrf": good}, allow_redirects=False)
        assert response.status == 403
        assert rooms.get_conference(conference.id).name == "Consultation", "nothing was deleted"

    run(settings, rooms, scenario)


def test_dashboard_shows_the_personal_room_and_regenerates_its_code(settings: Settings, rooms: Rooms,
                                                                    doctor: str) -> None:  # fmt: skip
    async def scenario(client: TestClient[Any, Any]) -> tuple[str, str, str]:
        await sign_in(client)
        first = await (await client.get("/")).text()
        unconfirmed = await post(client, "/personal-room/regenerate", {}, page="/")
        assert unconfirmed.status == 303
        same = await (await client.get("/")).text()
        confirmed = await post(client, "/personal-room/regenerate", {"confirm": "yes"}, page="/")
        assert confirmed.status == 303
        return first, same, await (await client.get(confirmed.headers["Location"])).text()

    room = rooms.personal_room("dr.martin")
    first, same, after = run(settings, rooms, scenario)

    def code(page: str) -> str:
        found = re.search(r'id="room-code">(\d{3} \d{3} \d{3})&nbsp;#', page)
        assert found, "the dashboard shows the room's code"
        return found.group(1)

    assert code(first) == code(same) == room.code_display, "not confirmed: the code stays"
    assert room.join_url in first, "the link is permanent"
    assert room.join_url in after, "the link is permanent"
    assert code(after) != code(first)
    assert rooms.personal_room("dr.martin").code_display == code(after)
    assert "Nouveau code créé" in after


GOOD = {
    "name": "Réunion de concertation", "entry": "chosen", "entry_code": "482915", "lobby": "until-host",
    "schedule": "scheduled", "day": "2026-12-03", "at": "14:30", "duration": "45", "timezone": "Europe/Paris",
    "message": "Merci d'être à l'heure.", "send": "now",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "  "}, "name", "Donnez un nom à la conférence."),
        ({"name": "x" * 201}, "name", "200 caractères au plus"),
        ({"user": "nobody.here"}, "user", "Aucun compte ne s&#39;appelle « nobody.here »"),
        ({"email": "pas-une-adresse"}, "email", "« pas-une-adresse » n&#39;est pas une adresse e-mail"),
        ({"phone": "04 91 00 00 00"}, "phone", "n&#39;est pas un numéro de mobile"),  # a landline gets no SMS
        ({"phone": "12"}, "phone", "n&#39;est pas un numéro de mobile"),
        ({"entry_code": "12a"}, "entry_code", "Le code d&#39;accès a de 4 à 8 chiffres"),
        ({"entry": "sometimes"}, "entry", "Choisissez : pas de code d&#39;accès"),
        ({"lobby": "garden"}, "lobby", "mode de salle d&#39;attente"),
        ({"day": "2026-11-27"}, "day", "Cette date et cette heure sont passées."),
        ({"day": "31/02/2026"}, "day", "Indiquez la date"),
        ({"at": "25:00"}, "day", "Indiquez la date"),
        ({"day": "2029-01-01"}, "day", "deux ans"),
        ({"duration": "7"}, "duration", "Choisissez une durée"),
        ({"timezone": "Mars/Olympus"}, "timezone", "fuseau horaire"),
        ({"schedule": "whenever"}, "schedule", "Choisissez une date et une heure"),
        ({"message": "x" * 2001}, "message", "2000 caractères au plus"),
        ({"send": "at", "send_day": "2026-12-04", "send_at": "08:00"}, "send_day", "avant le début"),
        ({"send": "at", "send_day": "", "send_at": ""}, "send_day", "Indiquez la date et l&#39;heure d&#39;envoi"),
        ({"send": "sometime"}, "send", "Choisissez quand les invitations partent."),
    ],
)
def test_the_wizard_refuses_each_bad_field_and_keeps_every_value(
    settings: Settings, rooms: Rooms, doctor: str, changes: dict[str, str], field: str, message: str
) -> None:
    data = [(k, v) for k, v in {**GOOD, **changes}.items() if k not in ("user", "email", "phone")]
    data += [("user", "inf.durand"), ("email", "anne.petit@example.org"), ("phone", "06 11 22 33 44")]
    data += [(k, v) for k, v in changes.items() if k in ("user", "email", "phone")]

    async def scenario(client: TestClient[Any, Any]) -> tuple[int, str]:
        await sign_in(client)
        response = await post(client, "/plan", data)
        return response.status, await response.text()

    status, page = run(settings, rooms, scenario)
    assert status == 400
    assert message in page
    assert 'aria-invalid="true"' in page
    assert rooms.list_conferences(owner="dr.martin") == [], "nothing is planned"
    for key, value in data:  # every value typed is back in the form (escaped as HTML)
        if key in ("entry", "schedule", "send", "lobby", "duration", "timezone"):
            if value in ("chosen", "scheduled", "now", "at", "until-host", "45", "Europe/Paris"):
                assert re.search(rf'value="{re.escape(value)}"\s+(checked|selected)', page), (key, value)
            continue
        shown = value.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;")
        assert shown in page, (key, value)


def test_planning_queues_an_email_with_its_event_and_an_sms_each(settings: Settings, rooms: Rooms, doctor: str,
                                                                  clock: FakeClock) -> None:  # fmt: skip
    data = [
        *GOOD.items(),
        ("user", "inf.durand"),
        ("user", "dr.petit"),
        ("email", "Anne.Petit@Example.org"),
        ("phone", "06 11 22 33 44"),
        ("email", "anne.petit@example.org"),
        ("phone", "+33 6 11 22 33 44"),
    ]

    async def scenario(client: TestClient[Any, Any]) -> str:
        await sign_in(client)
        response = await post(client, "/plan", data)
        assert response.status == 303, await response.text()
        return str(response.headers["Location"])

    location = run(settings, rooms, scenario)
    (conference,) = rooms.list_conferences(owner="dr.martin")
    assert location == f"/conferences/{conference.id}?planned=1"
    assert conference.entry_code == "482915"
    assert conference.lobby_mode.value == "until-host"
    paris = ZoneInfo("Europe/Paris")
    assert conference.starts_at is not None
    assert conference.ends_at is not None
    assert conference.starts_at.astimezone(paris).strftime("%Y-%m-%d %H:%M") == "2026-12-03 14:30"
    assert conference.ends_at - conference.starts_at == timedelta(minutes=45)
    invitees = rooms.list_invitees(conference.id)
    assert sorted(i.address for i in invitees) == [
        "+33611223344",
        "Anne.Petit@example.org",
        "dr.petit",
        "inf.durand",
    ], "the same address twice is invited once"
    assert {i.delivery_state for i in invitees} == {DeliveryState.QUEUED}
    messages = outbox(rooms)
    by = {m.recipient: m for m in messages}
    assert set(by) == {"sophie.durand@example.org", "Anne.Petit@example.org", "+33612345678", "+33611223344"}
    assert by["+33612345678"].channel is Channel.SMS, "an account with only a phone gets an SMS"
    # the English-speaking colleague in Martinique: her language, her time zone, her own link
    sophie = parsed(by["sophie.durand@example.org"])
    body = sophie.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert sophie["Subject"] == "Invitation: Réunion de concertation"
    assert re.search(r"9:30\sAM", body)
    assert "When: Thursday, December 3, 2026" in body, "the weekday and the month's name, never 03/12"
    assert "(Martinique Time)" in body
    sophie_link = next(i.join_url for i in invitees if i.address == "inf.durand")
    assert sophie_link in body
    assert conference.join_url not in body
    assert conference.code_display + " #" in body
    assert "482915 #" in body
    assert "Merci d'être à l'heure." in body
    calendar, event = event_of(by["sophie.durand@example.org"])
    assert calendar["METHOD"] == "REQUEST"
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == conference.starts_at
    assert str(event["ORGANIZER"]).lower() == "mailto:claire.martin@example.org"
    sms = by["+33611223344"].payload.decode()
    link = next(i.join_url for i in invitees if i.address == "+33611223344")
    assert link in sms
    assert conference.code in sms
    assert "482915" in sms
    assert "jeu. 3 déc. 14:30" in sms
    assert sms.startswith("Dr Claire Martin : "), "the organiser is named"
    assert len(sms) <= 160


def test_send_later_and_not_now(settings: Settings, rooms: Rooms, doctor: str, clock: FakeClock) -> None:
    later = {**GOOD, "send": "at", "send_day": "2026-12-01", "send_at": "08:00", "email": "anne.petit@example.org"}
    never = {**GOOD, "name": "Sans envoi", "send": "later", "email": "anne.petit@example.org"}

    async def scenario(client: TestClient[Any, Any]) -> None:
        await sign_in(client)
        assert (await post(client, "/plan", later)).status == 303
        assert (await post(client, "/plan", never)).status == 303

    run(settings, rooms, scenario)
    (message,) = outbox(rooms)
    assert message.next_attempt_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%d %H:%M") == "01 08:00"
    unsent = next(c for c in rooms.list_conferences(owner="dr.martin") if c.name == "Sans envoi")
    assert [i.delivery_state for i in rooms.list_invitees(unsent.id)] == [DeliveryState.NOT_SENT]


def test_conference_page_sends_updates_removals_and_cancellations(settings: Settings, rooms: Rooms, doctor: str,
                                                                   clock: FakeClock) -> None:  # fmt: skip
    data = [*{**GOOD, "send": "later"}.items(), ("email", "anne.petit@example.org"), ("phone", "06 11 22 33 44")]
    box = Outbox(rooms.sessions, settings.retry, now=clock)
    seen: list[tuple[str, str, Any]] = []

    def deliver() -> None:
        """What the worker would do: each due message out (and noted here, since rows go with their invitee)."""
        for message in box.due():
            row = box.get(message.id)
            if row.channel is Channel.SMS:
                text = row.payload.decode()
                seen.append(("sms", "CANCEL" if text.startswith("Annulée") else "REQUEST", text))
            else:
                calendar, event = event_of(row)
                seen.append((row.recipient, str(calendar["METHOD"]), event["SEQUENCE"]))
            box.sent(message.id)

    async def scenario(client: TestClient[Any, Any]) -> dict[str, str]:
        await sign_in(client)
        page = (await post(client, "/plan", data)).headers["Location"].split("?")[0]
        pages = {"planned": await (await client.get(page)).text()}
        assert (await post(client, f"{page}/send", {}, page=page)).status == 303  # those not sent yet
        pages["queued"] = await (await client.get(page)).text()
        await asyncio.to_thread(deliver)
        pages["sent"] = await (await client.get(page)).text()
        pages["edit"] = await (await client.get(f"{page}/edit")).text()
        edit = {**GOOD, "at": "15:00", "name": "RCP décalée"}
        assert (await post(client, f"{page}/edit", edit, page=f"{page}/edit")).status == 303
        bad = await post(client, f"{page}/invitees", {"email": "nope", "phone": "06 99 88 77 66"}, page=page)
        assert bad.status == 400
        pages["bad"] = await bad.text()
        added = await post(client, f"{page}/invitees", {"user": "dr.petit", "send": "now"}, page=page)
        assert added.status == 303
        await asyncio.to_thread(deliver)
        listing = await (await client.get(page)).text()
        anne = re.search(r'data-invitee="([0-9a-f-]+)">\s*<td>anne.petit@example.org', listing)
        assert anne
        pages["listing"] = listing
        asked = await post(client, f"{page}/invitees/{anne.group(1)}/remove", {}, page=page)
        assert asked.status == 200, "asked first: nothing removed, nothing sent"
        pages["asked"] = await asked.text()
        pages["still"] = await (await client.get(page)).text()
        removed = await post(client, f"{page}/invitees/{anne.group(1)}/remove", {"confirm": "yes"}, page=page)
        assert removed.status == 303
        assert (await post(client, f"{page}/delete", {}, page=page)).status == 303, "unconfirmed: nothing happens"
        pages["kept"] = await (await client.get(page)).text()
        deleted = await post(client, f"{page}/delete", {"confirm": "yes"}, page=page)
        assert deleted.headers["Location"] == "/?deleted=1"
        pages["dashboard"] = await (await client.get(deleted.headers["Location"])).text()
        assert (await client.get(page)).status == 404
        await asyncio.to_thread(deliver)
        return pages

    pages = run(settings, rooms, scenario)
    assert pages["planned"].count("non envoyée") == 2
    assert "Réunion de concertation" in pages["planned"]
    assert "482915&nbsp;#" in pages["planned"]
    assert pages["queued"].count("en cours d&#39;envoi") == 2
    assert pages["sent"].count(">envoyée<") == 2
    assert "« nope » n&#39;est pas une adresse e-mail" in pages["bad"]
    assert 'value="06 99 88 77 66"' in pages["bad"]
    invited = pages["edit"].split('id="invited"')[1].split("</div>")[0]
    assert "anne.petit@example.org" in invited, "editing shows who is invited"
    assert "06 11 22 33 44" in invited
    assert invited.count(">envoyée<") == 2
    assert 'id="send-pending" >' in pages["planned"]
    assert 'id="send-pending" hidden>' in pages["sent"], "nothing left to send: no button for it"
    assert "Dr Paul Petit (dr.petit)" in pages["listing"], "a colleague by name"
    assert "06 11 22 33 44" in pages["listing"], "a number as people write it"
    assert "+33611223344" not in pages["listing"]
    assert 'aria-label="Retirer anne.petit@example.org"' in pages["listing"]
    assert "Retirer anne.petit@example.org de « RCP décalée » ?" in pages["asked"]
    assert "reçoit une annulation" in pages["asked"]
    assert 'name="confirm" value="yes"' in pages["asked"]
    assert "anne.petit@example.org" in pages["still"].split('id="add"')[0], "not removed before the confirmation"
    assert "La conférence est supprimée" in pages["dashboard"]
    assert "RCP décalée" in pages["kept"]
    assert "anne.petit@example.org" not in pages["kept"]
    assert seen[0] == ("anne.petit@example.org", "REQUEST", 0)
    assert seen[1][:2] == ("sms", "REQUEST")
    assert seen[2] == ("anne.petit@example.org", "REQUEST", 1), "the change goes to those invited, sequence 1"
    assert seen[3][:2] == ("sms", "REQUEST")
    assert "15:00" in str(seen[3][2]), "the SMS invitee gets the new time"
    assert str(seen[3][2]).startswith("Modifiée par Dr Claire Martin : "), "and is told it replaces the first"
    assert seen[4][:2] == ("sms", "REQUEST"), "dr.petit (an account with only a phone) invited at once"
    assert seen[5] == ("anne.petit@example.org", "CANCEL", 1), "taken off the list: a cancellation"
    assert [s[:2] for s in seen[6:]] == [("sms", "CANCEL"), ("sms", "CANCEL")], "deleted: the others told"
    assert "RCP d" in str(seen[6][2])
    assert len(seen) == 8


def test_nothing_is_cancelled_that_never_went_out(settings: Settings, rooms: Rooms, doctor: str) -> None:
    data = {**GOOD, "email": "anne.petit@example.org"}

    async def scenario(client: TestClient[Any, Any]) -> None:
        await sign_in(client)
        page = (await post(client, "/plan", data)).headers["Location"].split("?")[0]
        assert (await post(client, f"{page}/delete", {"confirm": "yes"}, page=page)).status == 303

    run(settings, rooms, scenario)
    assert outbox(rooms) == [], "the queued invitation went with the conference, and no cancellation follows it"


def test_a_conference_is_its_owners_only(settings: Settings, rooms: Rooms, doctor: str) -> None:
    theirs = rooms.create_conference(ConferenceDraft(name="Dossier de Dr Petit", owner="dr.petit"))

    async def scenario(client: TestClient[Any, Any]) -> list[int]:
        await sign_in(client)
        page = f"/conferences/{theirs.id}"
        token = await csrf(client, "/")
        statuses = [(await client.get(page)).status, (await client.get(page + "/edit")).status,
                    (await client.get("/conferences/not-a-uuid")).status]  # fmt: skip
        for action in ("/send", "/delete", "/invitees"):
            response = await client.post(page + action, data={"csrf": token, "confirm": "yes", "email": "a@b.org"},
                                         allow_redirects=False)  # fmt: skip
            statuses.append(response.status)
        return statuses

    assert run(settings, rooms, scenario) == [404] * 6
    assert rooms.get_conference(theirs.id).name == "Dossier de Dr Petit"


def test_user_autocomplete(settings: Settings, rooms: Rooms, doctor: str) -> None:
    async def scenario(client: TestClient[Any, Any]) -> list[Any]:
        await sign_in(client)
        queries = ("dr", "soph", "x", "%", "d_", "%25%25", "%5C%5C%25")  # the last two: "%%" and "\\%"
        return [await (await client.get(f"/api/users?q={q}")).json() for q in queries]

    dr, soph, short, wildcard, underscore, two_wildcards, escaped = run(settings, rooms, scenario)
    assert two_wildcards == [], "two wildcards listed every account"
    assert escaped == []
    assert [u["username"] for u in dr] == ["dr.martin", "dr.petit"]
    assert soph == [{"username": "inf.durand", "name": "Sophie Durand"}]
    assert short == []
    assert wildcard == []
    assert underscore == []


def test_dashboard_lists_what_is_coming_and_ongoing_with_the_right_links(
    settings: Settings, rooms: Rooms, doctor: str, clock: FakeClock
) -> None:
    now, hour = clock.now, timedelta(hours=1)

    def planned(name: str, owner: str, start: timedelta, end: timedelta) -> Any:
        return rooms.create_conference(ConferenceDraft(name=name, owner=owner, start=now + start, end=now + end))

    ongoing = planned("RCP en cours", "dr.martin", -timedelta(minutes=10), 3 * hour)
    coming = planned("Formation à venir", "dr.petit", 24 * hour, 25 * hour)
    mine_later = planned("Staff", "dr.martin", 48 * hour, 49 * hour)
    ended = planned("Passée", "dr.martin", timedelta(minutes=5), timedelta(minutes=30))
    invited = rooms.add_invitee(coming.id, "user", "dr.martin")
    rooms.create_conference(ConferenceDraft(name="Pas pour moi", owner="dr.petit"))

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, str]:
        await sign_in(client)
        clock.advance(timedelta(hours=2))  # "Passée" is over, "RCP en cours" within its grace
        response = await client.get("/")
        return await response.text(), response.headers.get("Cache-Control", "")

    page, caching = run(settings, rooms, scenario)
    names = re.findall(r'<li class="conference[^"]*">\s*<a href="([^"]+)">([^<]+)</a>', page)
    assert [n for _, n in names] == ["RCP en cours", "Formation à venir", "Staff"]
    assert ended.name not in page
    links = dict((n, href) for href, n in names)
    assert links["RCP en cours"] == f"/conferences/{ongoing.id}"
    assert links["Staff"] == f"/conferences/{mine_later.id}"
    assert links["Formation à venir"] == invited.join_url, "invited by username: their own link"
    assert page.count("En cours") == 1
    assert caching == "no-store", "a signed-in page stays out of caches"


def test_session_cookie_is_secure_on_an_https_site_and_local_login_can_be_off(database_url: str, engine: Any,
                                                                               doctor: str) -> None:  # fmt: skip
    from config import load_settings
    from rooms.db import session_factory

    https = load_settings(environ={"PASSERELLE_DATABASE__URL": database_url,
                                   "PASSERELLE_HTTP__PUBLIC_BASE_URL": "https://visio.example.org"})  # fmt: skip
    off = load_settings(environ={"PASSERELLE_DATABASE__URL": database_url, "PASSERELLE_OIDC__LOCAL_LOGIN": "false"})

    async def secure(client: TestClient[Any, Any]) -> list[str]:
        page = await client.get("/login")
        seed = page.cookies["psl_csrf"]
        assert seed["secure"], "even the CSRF cookie stays on https"
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', await page.text()).group(1)  # type: ignore[union-attr]
        response = await client.post("/login", data={"username": "dr.martin", "password": PASSWORD, "csrf": token},
                                     cookies={"psl_csrf": seed.value}, allow_redirects=False)  # fmt: skip
        assert response.status == 303
        return list(response.headers.getall("Set-Cookie"))

    cookies = run(https, Rooms(https, session_factory(engine)), secure)
    assert any(c.startswith("psl_session=") for c in cookies)
    assert all("Secure" in c and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies), cookies

    join = (
        "/c/" + Rooms(off, session_factory(engine)).create_conference(ConferenceDraft(name="x")).join_url.split("/")[-1]
    )

    async def refused(client: TestClient[Any, Any]) -> tuple[str, int]:
        page = await (await client.get("/login")).text()
        token = await csrf(client, join)  # a page with a form
        response = await client.post("/login", data={"username": "dr.martin", "password": PASSWORD, "csrf": token},
                                     allow_redirects=False)  # fmt: skip
        return page, response.status

    page, status = run(off, Rooms(off, session_factory(engine)), refused)
    assert 'id="login"' not in page
    assert status == 404


def test_leaving_a_room_says_so_to_anyone_and_offers_the_dashboard_to_professionals(settings: Settings, rooms: Rooms,
                                                                                    doctor: str) -> None:  # fmt: skip
    async def scenario(client: TestClient[Any, Any]) -> tuple[str, str]:
        patient = await (await client.get("/left")).text()
        await sign_in(client)
        return patient, await (await client.get("/left")).text()

    patient, professional = run(settings, rooms, scenario)
    for page in (patient, professional):
        assert "Vous avez quitté la conférence" in page
        assert "Connexion" not in page.split("<main")[1], "a patient is not sent to the professionals' sign-in"
    assert 'href="/">Vos conférences' in professional
    assert 'href="/">Vos conférences' not in patient


def test_a_signed_in_professional_finds_their_name_already_typed(settings: Settings, rooms: Rooms,
                                                                 doctor: str) -> None:  # fmt: skip
    link = f"/c/{rooms.personal_room('dr.petit').join_url.rsplit('/', 1)[1]}"

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, str]:
        patient = await (await client.get(link)).text()
        await sign_in(client)
        return patient, await (await client.get(link)).text()

    patient, professional = run(settings, rooms, scenario)
    assert re.search(r'id="name" name="name"[^>]*value=""', patient), "a patient's name field is empty"
    assert re.search(r'id="name" name="name"[^>]*value="Dr Claire Martin"', professional), "their own name, editable"


def test_a_path_that_leads_nowhere_gets_the_sites_page_in_the_visitors_language(settings: Settings,
                                                                                rooms: Rooms) -> None:  # fmt: skip
    async def scenario(client: TestClient[Any, Any]) -> list[tuple[int, str, str]]:
        answers = []
        for path, language in (("/nowhere", "fr"), ("/no/such/page?lang=en", "en"), ("/api/v1/nothing", "fr")):
            response = await client.get(path, headers={"Accept-Language": language})
            answers.append((response.status, response.content_type, await response.text()))
        return answers

    french, english, api = run(settings, rooms, scenario)
    assert french[:2] == (404, "text/html")
    assert "Page introuvable" in french[2]
    assert '<html lang="fr">' in french[2]
    assert english[:2] == (404, "text/html")
    assert "Page not found" in english[2]
    assert "404: Not Found" not in french[2] + english[2]
    assert api[0] == 404, "the API's answers are its own"
    assert "Page introuvable" not in api[2]


def test_delivery_states_are_given_to_the_owner_only(settings: Settings, rooms: Rooms, doctor: str) -> None:
    async def scenario(client: TestClient[Any, Any]) -> tuple[Any, int, int]:
        await sign_in(client)
        page = (await post(client, "/plan", [*{**GOOD, "send": "later"}.items(), ("email", "a@example.org")])
                ).headers["Location"].split("?")[0]  # fmt: skip
        mine = await (await client.get(f"{page}/deliveries")).json()
        await post(client, "/logout", {}, page="/")
        anonymous = (await client.get(f"{page}/deliveries", allow_redirects=False)).status
        await sign_in(client, "dr.petit")
        return mine, anonymous, (await client.get(f"{page}/deliveries", allow_redirects=False)).status

    mine, anonymous, other = run(settings, rooms, scenario)
    assert [(i["state"], i["text"]) for i in mine["invitees"]] == [("not-sent", "non envoyée")]
    assert mine["pending"] is True
    assert anonymous in (302, 303, 401)
    assert other == 404, "another professional's conference is not theirs to watch"


def test_the_personal_room_invites_like_a_planned_conference_and_has_its_page(settings: Settings, rooms: Rooms,
                                                                               doctor: str) -> None:  # fmt: skip
    room = rooms.personal_room("dr.martin")

    async def scenario(client: TestClient[Any, Any]) -> tuple[str, int, str]:
        await sign_in(client)
        dashboard = await (await client.get("/")).text()
        invited = await post(client, f"/conferences/{room.id}/invitees",
                             {"email": "anne.petit@example.org", "phone": "06 11 22 33 44", "send": "now"},
                             page="/")  # fmt: skip
        return dashboard, invited.status, await (await client.get(f"/conferences/{room.id}")).text()

    dashboard, status, page = run(settings, rooms, scenario)
    assert f'id="room-page" href="/conferences/{room.id}"' in dashboard, "the room's page is linked"
    assert f'action="/conferences/{room.id}/invitees" id="room-invite"' in dashboard, "invite from the dashboard"
    assert status == 303
    assert "anne.petit@example.org" in page
    assert "06 11 22 33 44" in page
    by = {m.recipient: m for m in outbox(rooms)}
    mail = parsed(by["anne.petit@example.org"])
    assert mail["Subject"] == f"Invitation : {room.name}"
    assert room.code_display + " #" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert by["+33611223344"].channel is Channel.SMS
    assert 'id="edit"' not in page, "a personal room has no schedule to change"
