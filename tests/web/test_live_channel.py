"""The room's live channel: every message checked against web/protocol.py before a handler sees it, changes
pushed by the room's hub (nothing sent while nothing changes), the host's actions refused to guests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge import Engine
from config import Settings, load_settings
from notify.outbox import Outbox, deliver_due
from rooms import ConferenceDraft, Rooms
from tests.notify.test_mail import received, smtp_server
from tests.notify.test_sms import GATEWAY_PASSWORD, GATEWAY_URL, gateway
from tests.web.test_room_follows import Client, offer, run, until
from web import protocol, tickets
from web.app import LIVE
from web.hub import RateLimit
from web.live import CHAT_LIMITS, INVITE_LIMITS, Session


def test_every_message_of_the_protocol_has_its_handler_and_no_handler_is_undocumented() -> None:
    handlers = {name.removeprefix("on_").replace("_", "-") for name in dir(Session) if name.startswith("on_")}
    assert handlers == set(protocol.INBOUND)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], "expected a JSON object with a type"),
        ({"type": 3}, "expected a JSON object with a type"),
        ({"type": "launch"}, "unknown message type 'launch'"),
        ({"type": "mute"}, "muted: missing"),
        ({"type": "mute", "muted": "yes"}, "muted: wrong type"),
        ({"type": "candidate", "candidate": "", "sdpMLineIndex": True}, "sdpMLineIndex: wrong type"),  # no number
        ({"type": "admit", "leg": ""}, "leg: empty"),
        ({"type": "admit", "leg": "x" * 41}, "leg: longer than 40 characters"),
    ],
)
def test_a_message_is_checked_against_the_protocol(data: Any, error: str) -> None:
    with pytest.raises(protocol.Refused, match=error):
        protocol.read(data)


def test_fields_not_in_the_protocol_are_dropped() -> None:
    kind, spec, fields = protocol.read({"type": "hand", "raised": True, "sdp": "x", "__proto__": {}})
    assert (kind, spec.who, fields) == ("hand", protocol.Who.IN, {"raised": True})


async def _join(client: Client, key: bytes, conference_id: Any, name: str, *, host: bool = False) -> tuple[Any, str]:
    """A page in the room: its socket and its leg id."""
    socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference_id, name, 'audio', None, host=host)}")
    welcome = await until(socket, "welcome")
    await socket.send_json(await offer())
    await until(socket, "answer")
    return socket, welcome["you"]


async def _quiet(socket: Any, for_s: float) -> list[str]:
    """The types of what arrives in ``for_s`` seconds."""
    seen: list[str] = []
    try:
        while True:
            message = await asyncio.wait_for(socket.receive(), for_s)
            seen.append(json.loads(message.data)["type"])
    except TimeoutError:
        return seen


def test_changes_are_pushed_once_and_nothing_is_sent_while_nothing_changes(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        anne, _ = await _join(client, key, conference.id, "Anne")
        first = await until(anne, "participants")
        paul, paul_leg = await _join(client, key, conference.id, "Paul")
        both = await until(anne, "participants")
        idle = await _quiet(anne, 1.0)  # the engine does not tick here: nobody speaks, nothing changes
        await paul.send_json({"type": "mute", "muted": True})
        muted = await until(anne, "participants", limit_s=1)
        await paul.send_json({"type": "hand", "raised": True})
        hand = await until(anne, "participants", limit_s=1)
        await paul.close()
        left = await until(anne, "participants", limit_s=1)
        await anne.close()
        return {"first": first, "both": both, "idle": idle, "muted": muted, "hand": hand, "left": left,
                "paul": paul_leg}  # fmt: skip

    out = run(settings, rooms, scenario, engine=Engine())
    assert [p["label"] for p in out["first"]["list"]] == ["Anne"]
    assert [p["label"] for p in out["both"]["list"]] == ["Anne", "Paul"]
    assert out["both"]["by_phone"] == 0
    assert "participants" not in out["idle"], "a list was sent though nothing changed"
    paul = next(p for p in out["muted"]["list"] if p["id"] == out["paul"])
    assert (paul["muted"], paul["hand"]) == (True, False)
    assert next(p for p in out["hand"]["list"] if p["id"] == out["paul"])["hand"] is True
    assert [p["label"] for p in out["left"]["list"]] == ["Anne"]


def test_a_guest_is_refused_the_hosts_actions_and_stays_connected(
    settings: Settings, rooms: Rooms, caplog: pytest.LogCaptureFixture
) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> list[dict[str, Any]]:
        guest, leg = await _join(client, key, conference.id, "Anne")
        errors = []
        for action in ({"type": "end"}, {"type": "mute-other", "leg": leg}, {"type": "remove", "leg": "web-9"},
                       {"type": "settings", "private_chat": False}):  # fmt: skip
            await guest.send_json(action)
            errors.append(await until(guest, "error"))
        await guest.send_str("x" * (protocol.MAX_FRAME + 1))
        errors.append(await until(guest, "error"))
        await guest.send_json({"type": "hand", "raised": True})
        await until(guest, "participants")
        assert not guest.closed
        await guest.close()
        return errors

    with caplog.at_level(logging.INFO, logger="web.live"):
        errors = run(settings, rooms, scenario)
    assert [e["about"] for e in errors] == ["end", "mute-other", "remove", "settings", ""]
    assert all("host" in e["message"] for e in errors[:4])
    assert "at most 64 kB" in errors[4]["message"]
    refusals = [r.getMessage() for r in caplog.records if "refused (not a host)" in r.getMessage()]
    assert len(refusals) == 4
    assert rooms.get_conference(conference.id).window is not None  # not ended


def test_the_host_mutes_lowers_a_hand_and_takes_out_who_cannot_come_back(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    engine = Engine()

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        host, _ = await _join(client, key, conference.id, "Dr", host=True)
        ticket = tickets.issue(key, conference.id, "Anne", "audio", None)
        anne = await client.ws_connect(f"/ws/room/{ticket}")
        anne_leg = (await until(anne, "welcome"))["you"]
        await anne.send_json(await offer())
        await until(anne, "answer")
        await anne.send_json({"type": "hand", "raised": True})
        await host.send_json({"type": "mute-other", "leg": anne_leg})
        out["told"] = await until(anne, "muted-by-host")
        out["muted"] = engine.is_muted(anne_leg)
        await host.send_json({"type": "lower-hand", "leg": anne_leg})
        await asyncio.sleep(0.3)
        out["hands"] = dict(client.app[LIVE].hubs.get(str(conference.id)).hands)
        await host.send_json({"type": "remove", "leg": "web-99"})
        out["nobody"] = (await until(host, "error"))["message"]
        await host.send_json({"type": "remove", "leg": anne_leg})
        out["taken_out"] = (await until(anne, "ended"))["reason"]
        again = await client.ws_connect(f"/ws/room/{ticket}")
        out["again"] = (await until(again, "ended"))["reason"]
        out["in_room"] = engine.legs_in(str(conference.id))
        await host.close()
        return out

    out = run(settings, rooms, scenario, engine=engine)
    assert out["told"] == {"type": "muted-by-host"}
    assert out["muted"] is True
    assert out["hands"] == {}
    assert "nobody" in out["nobody"]
    assert out["taken_out"] == "taken-out"
    assert out["again"] == "taken-out", "a page taken out came straight back with the same link"
    assert len(out["in_room"]) == 1


def test_a_callers_star_nine_raises_and_lowers_its_hand_in_the_list(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> list[bool]:
        host, _ = await _join(client, key, conference.id, "Dr", host=True)
        await until(host, "participants")
        live = client.app[LIVE]
        seen = [live.phone_hand("sip-7", str(conference.id))]
        hub = live.hubs.get(str(conference.id))
        seen.append("sip-7" in hub.hands)
        seen.append(live.phone_hand("sip-7", str(conference.id)))
        seen.append("sip-7" in hub.hands)
        await host.close()
        return seen

    assert run(settings, rooms, scenario) == [True, True, False, False]


class Ticking:
    """A clock for the chat's limits, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_chat_to_everyone_privately_history_and_the_host_s_tools(
    settings: Settings, rooms: Rooms, caplog: pytest.LogCaptureFixture
) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    secret = "J'ai mal au dos depuis lundi <script>alert(1)</script>"

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        host, host_leg = await _join(client, key, conference.id, "Dr Martin", host=True)
        anne, _ = await _join(client, key, conference.id, "Anne")
        paul, _ = await _join(client, key, conference.id, "Paul")
        for socket in (host, anne, paul):
            await until(socket, "chat-history")
        await anne.send_json({"type": "chat", "text": f"  {secret}  "})
        out["public"] = [(await until(s, "chat"))["message"] for s in (host, anne, paul)]
        await anne.send_json({"type": "chat", "text": "seulement pour le docteur", "to": host_leg})
        out["private"] = [(await until(s, "chat"))["message"] for s in (host, anne)]
        out["paul_saw"] = [m for m in await _quiet(paul, 0.5) if m == "chat"]
        await anne.send_json({"type": "chat", "text": "x", "to": "web-99"})
        out["nobody"] = (await until(anne, "error"))["message"]
        await anne.send_json({"type": "chat", "text": "   "})
        out["blank"] = (await until(anne, "error"))["message"]
        await host.send_json({"type": "settings", "private_chat": False})
        out["settings"] = await until(anne, "settings")
        await anne.send_json({"type": "chat", "text": "encore", "to": host_leg})
        out["private_off"] = (await until(anne, "error"))["message"]
        late, _ = await _join(client, key, conference.id, "Claire")
        out["history"] = (await until(late, "chat-history"))["list"]
        response = await client.get(f"/room/{tickets.issue(key, conference.id, 'Dr Martin', 'audio', None, host=True)}"
                                    "/chat.txt")  # fmt: skip
        out["download"] = (response.status, response.headers["Content-Type"], await response.text())
        guest = await client.get(f"/room/{tickets.issue(key, conference.id, 'Anne', 'audio', None)}/chat.txt")
        out["guest_download"] = guest.status
        await anne.send_json({"type": "chat-clear"})
        out["guest_clear"] = (await until(anne, "error"))["message"]
        await host.send_json({"type": "chat-delete", "id": out["public"][0]["id"]})
        out["deleted"] = await until(paul, "chat-deleted")
        await host.send_json({"type": "chat-clear"})
        out["cleared"] = await until(late, "chat-cleared")
        for socket in (host, anne, paul, late):
            await socket.close()
        return out

    with caplog.at_level(logging.DEBUG):
        out = run(settings, rooms, scenario)
    public = out["public"]
    assert {m["id"] for m in public} == {public[0]["id"]}, "one message, the same to everyone"
    assert public[0]["text"] == secret.strip()
    assert public[0]["name"] == "Anne"
    assert public[0]["to"] is None
    assert [m["text"] for m in out["private"]] == ["seulement pour le docteur"] * 2
    assert out["paul_saw"] == [], "a private message reached a third participant"
    assert "someone in the room" in out["nobody"]
    assert "empty" in out["blank"]
    assert out["settings"]["private_chat"] is False
    assert "turned private messages off" in out["private_off"]
    assert [m["text"] for m in out["history"]] == [secret], "a late joiner gets the public messages only"
    status, kind, text = out["download"]
    assert (status, kind) == (200, "text/plain; charset=utf-8")
    assert f"Anne: {secret}" in text
    assert "Anne → Dr Martin: seulement pour le docteur" in text
    assert out["guest_download"] == 403
    assert "host" in out["guest_clear"]
    assert out["deleted"]["id"] == public[0]["id"]
    assert rooms.chat.history(conference.id, rooms.now() - timedelta(days=1), legs=frozenset({"web-1"})) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "mal au dos" not in logged, "a chat message reached the log"
    assert "docteur" not in logged, "a private chat message reached the log"


def test_the_61st_message_in_a_minute_is_refused(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    ticking = Ticking()

    async def scenario(client: Client, key: bytes) -> list[str]:
        client.app[LIVE].chat_limit = RateLimit(*CHAT_LIMITS, clock=ticking)
        anne, _ = await _join(client, key, conference.id, "Anne")
        outcomes = []
        for n in range(6):  # six at once: the sixth is one too many in a second
            await anne.send_json({"type": "chat", "text": f"burst {n}"})
            outcomes.append((await until(anne, "chat" if n < 5 else "error"))["type"])
        ticking.now += 1.0
        for n in range(55):  # 60 in the minute, each 0.25 s apart
            await anne.send_json({"type": "chat", "text": f"message {n}"})
            outcomes.append((await until(anne, "chat"))["type"])
            ticking.now += 0.25
        await anne.send_json({"type": "chat", "text": "the 61st"})
        outcomes.append((await until(anne, "error"))["message"])
        ticking.now += 60
        await anne.send_json({"type": "chat", "text": "a minute later"})
        outcomes.append((await until(anne, "chat"))["message"]["text"])
        await anne.close()
        return outcomes

    outcomes = run(settings, rooms, scenario)
    assert outcomes[:6] == ["chat"] * 5 + ["error"]
    assert outcomes[6:61] == ["chat"] * 55
    assert "too many messages" in outcomes[61]
    assert outcomes[62] == "a minute later"


def test_a_new_name_is_seen_by_everyone_and_kept_across_a_reconnection(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        host, _ = await _join(client, key, conference.id, "Dr", host=True)
        ticket = tickets.issue(key, conference.id, "Anne", "audio", None)
        anne = await client.ws_connect(f"/ws/room/{ticket}")
        await anne.send_json(await offer())
        await until(anne, "answer")
        await anne.send_json({"type": "name", "name": "  Anne   Petit "})
        out: dict[str, Any] = {"renamed": await until(anne, "renamed")}
        seen = await until(host, "participants")
        while "Anne Petit" not in [p["label"] for p in seen["list"]]:
            seen = await until(host, "participants")
        await anne.close()
        back = await client.ws_connect(f"/ws/room/{ticket}")
        await back.send_json(await offer())
        await until(back, "answer")
        again = await until(host, "participants")
        while len(again["list"]) < 2:
            again = await until(host, "participants")
        out["after"] = sorted(p["label"] for p in again["list"])
        await back.send_json({"type": "name", "name": "x" * 81})
        out["too_long"] = (await until(back, "error"))["message"]
        await back.close()
        await host.close()
        return out

    out = run(settings, rooms, scenario)
    assert out["renamed"]["name"] == "Anne Petit"
    assert out["after"] == ["Anne Petit", "Dr"]
    assert "longer than 80" in out["too_long"]


def test_invite_from_the_room_by_email_and_sms_through_the_outbox(
    settings: Settings, rooms: Rooms, tmp_path: Path, database_url: str
) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    ticking = Ticking()

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        live = client.app[LIVE]
        live.invite_limit = RateLimit(*INVITE_LIMITS, clock=ticking)
        outbox = Outbox(rooms.sessions, wired.retry, rooms.now)
        host, _ = await _join(client, key, conference.id, "Dr Martin", host=True)
        guest, _ = await _join(client, key, conference.id, "Anne")
        out: dict[str, Any] = {}
        await host.send_json({"type": "invite", "address": "paul.roux@example.org", "message": "Apportez vos analyses"})
        out["invited"] = await until(host, "invited")
        await host.send_json({"type": "invite", "address": "06 12 34 56 78"})
        out["by_sms"] = await until(host, "invited")
        out["delivered"] = await deliver_due(outbox, wired)
        out["states"] = sorted([(await until(host, "invite-state", limit_s=8))["state"] for _ in range(2)])
        await host.send_json({"type": "invite", "address": "paul.roux@example.org"})
        out["again"] = (await until(host, "error"))["message"]
        await host.send_json({"type": "invite", "address": "pas une adresse"})
        out["garbage"] = (await until(host, "error"))["message"]
        await guest.send_json({"type": "invite", "address": "claire@example.org"})
        out["guest"] = (await until(guest, "error"))["message"]
        await host.send_json({"type": "settings", "guests_invite": True})
        out["settings"] = await until(guest, "settings")
        for n in range(10):
            await guest.send_json({"type": "invite", "address": f"p{n}@example.org"})
            await until(guest, "invited")
        await guest.send_json({"type": "invite", "address": "p10@example.org"})
        out["eleventh"] = (await until(guest, "error"))["message"]
        await host.close()
        await guest.close()
        return out

    with smtp_server(tmp_path) as (smtp_port, box), gateway(tmp_path) as (sms_port, sms_out):
        wired = load_settings(environ={
            "PASSERELLE_DATABASE__URL": database_url, "PASSERELLE_EMAIL__SMTP": f"127.0.0.1:{smtp_port}",
            "PASSERELLE_EMAIL__SECURITY": "none", "PASSERELLE_SMS__URL": GATEWAY_URL.format(port=sms_port),
            "PASSERELLE_SMS__USERNAME": "clinic", "PASSERELLE_SMS__PASSWORD": GATEWAY_PASSWORD,
        })  # fmt: skip
        out = run(wired, rooms, scenario)
        (mail,) = received(box)
        sms = sms_out.read_text(encoding="utf-8")
    assert out["invited"]["state"] == "queued"
    assert out["delivered"] == 2
    assert out["states"] == ["sent", "sent"]
    parsed = email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)
    body = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Apportez vos analyses" in body
    assert conference.code_display in body
    assert "/i/" in body, "the invitee's own link"
    assert '"to": "33612345678"' in sms
    assert "already invited" in out["again"]
    assert "email" in out["garbage"] or "phone" in out["garbage"]
    assert "only the host may invite" in out["guest"]
    assert out["settings"]["guests_invite"] is True
    assert "too many invitations" in out["eleventh"]


def test_a_locked_room_takes_nobody_new_but_those_in_come_back_and_it_opens_when_empty(
    settings: Settings, rooms: Rooms
) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    room = str(conference.id)

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        live = client.app[LIVE]
        host, _ = await _join(client, key, conference.id, "Dr", host=True)
        anne_ticket = tickets.issue(key, conference.id, "Anne", "audio", None)
        anne = await client.ws_connect(f"/ws/room/{anne_ticket}")
        await until(anne, "welcome")
        await anne.send_json(await offer())
        anne_pass = (await until(anne, "pass"))["pass"]
        await anne.send_json({"type": "settings", "locked": True})
        out["guest_locks"] = (await until(anne, "error"))["message"]
        await host.send_json({"type": "settings", "locked": True})
        out["anne_told"] = (await until(anne, "settings"))["locked"]
        out["hook"] = live.locked(room)
        paul = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Paul', 'audio', None)}")
        await until(paul, "welcome")
        await paul.send_json(await offer())
        out["paul"] = (await until(paul, "ended"))["reason"]
        await anne.close()  # a blip: back with her pass
        anne = await client.ws_connect(f"/ws/room/{anne_ticket}")
        await until(anne, "welcome")
        await anne.send_json(await offer(room_pass=anne_pass))
        out["anne_back"] = (await until(anne, "settings"))["locked"]
        colleague, _ = await _join(client, key, conference.id, "Dr Martin", host=True)
        await until(colleague, "pass")
        out["in_room"] = len(client.app[LIVE].engine.legs_in(room))
        await host.send_json({"type": "settings", "locked": False})
        out["unlocked"] = (await until(anne, "settings"))["locked"]
        paul = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Paul', 'audio', None)}")
        await paul.send_json(await offer())
        await until(paul, "pass")
        await host.send_json({"type": "settings", "locked": True})
        await until(anne, "settings")
        for socket in (host, anne, colleague, paul):
            await socket.close()
        await asyncio.sleep(0.3)
        out["empty_opens"] = live.locked(room)
        return out

    out = run(settings, rooms, scenario)
    assert out["guest_locks"] == "only the conference's host may do this"
    assert (out["anne_told"], out["hook"]) == (True, True)
    assert out["paul"] == "locked", "a new page came into a locked room"
    assert out["anne_back"] is True, "a page in the room could not come back after a blip"
    assert out["in_room"] == 3, "a host or a returning page was kept out"
    assert out["unlocked"] is False
    assert out["empty_opens"] is False, "the room stayed locked with nobody in it"
