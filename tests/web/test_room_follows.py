"""The room follows its conference: the room page and socket refuse a deleted conference, a removed invitee, a
closed window; a deletion, a removal or a host's "end for everyone" takes people out at once, told why; a page that
reconnects by itself comes back as it was (muted, in the room rather than the lobby)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge import Engine
from bridge.callflow import Lobby
from config import Settings
from rooms import AuditKind, ConferenceDraft, Rooms
from tests.conftest import FakeClock
from web import create_app, tickets
from web.app import LIVE, PAGES

Client = TestClient[Any, Any]


def run(settings: Settings, rooms: Rooms, scenario: Any, *, engine: Engine | None = None) -> Any:
    async def main() -> Any:
        app = create_app(settings, rooms, engine or Engine(), Lobby())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await scenario(client, app[PAGES].key)

    return asyncio.run(asyncio.wait_for(main(), 60))


async def offer(muted: bool = False, room_pass: str | None = None) -> dict[str, Any]:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return {"type": "offer", "sdp": sdp, "muted": muted, "pass": room_pass}


async def until(
    socket: Any, kind: str, limit_s: float = 10, seen: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The next ``kind`` message, skipping the others (each kept in ``seen``, when given)."""
    while True:
        try:
            message = await asyncio.wait_for(socket.receive(), limit_s)
        except TimeoutError:
            after = f" after {[m['type'] for m in seen]}" if seen is not None else ""
            raise AssertionError(f"no {kind!r} message within {limit_s} s{after}") from None
        if message.type.name != "TEXT":
            raise AssertionError(f"socket closed before a {kind!r} message")
        data: dict[str, Any] = json.loads(message.data)
        if seen is not None:
            seen.append(data)
        if data["type"] == kind:
            return data


def test_room_page_refuses_a_deleted_conference_a_removed_invitee_and_a_closed_window(
    settings: Settings, rooms: Rooms, clock: FakeClock
) -> None:
    gone = rooms.create_conference(ConferenceDraft(name="Annulée"))
    kept = rooms.create_conference(ConferenceDraft(name="Consultation",
                                                   start=clock.now + timedelta(hours=1),
                                                   end=clock.now + timedelta(hours=2)))  # fmt: skip
    invitee = rooms.add_invitee(kept.id, "email", "anne.petit@example.org", send_now=False)

    async def scenario(client: Client, key: bytes) -> list[tuple[int, str]]:
        cancelled = tickets.issue(key, gone.id, "Anne", "audio", None)
        removed = tickets.issue(key, kept.id, "Anne", "audio", invitee.id)
        early = tickets.issue(key, kept.id, "Paul", "audio", None)
        rooms.delete_conference(gone.id)
        rooms.remove_invitee(kept.id, invitee.id)
        pages = [await client.get(f"/room/{t}") for t in (cancelled, removed, early)]
        clock.advance(timedelta(hours=3))
        pages.append(await client.get(f"/room/{early}"))
        return [(p.status, await p.text()) for p in pages]

    (cancelled, removed, early, late) = run(settings, rooms, scenario)
    assert cancelled[0] == 410
    assert "annulée par son organisateur" in cancelled[1]
    assert removed[0] == 403
    assert "plus invité" in removed[1]
    assert early[0] == 403
    assert "pas encore ouverte" in early[1]
    assert late[0] == 403
    assert "est terminée" in late[1]


def test_deleting_removing_or_ending_takes_browsers_out_at_once(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))
    invitee = rooms.add_invitee(conference.id, "email", "anne.petit@example.org", send_now=False)

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        host = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Dr', 'audio', None, host=True)}")
        guest = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Anne', 'audio', invitee.id)}")
        other = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Paul', 'audio', None)}")
        for socket in (host, guest, other):
            await socket.send_json(await offer())
            await until(socket, "answer")
        await asyncio.to_thread(rooms.remove_invitee, conference.id, invitee.id)  # from a thread, as the site does
        out: dict[str, Any] = {"guest": await until(guest, "ended")}
        await asyncio.sleep(0.3)
        out["others_still_in"] = not host.closed and not other.closed
        await host.send_json({"type": "end"})
        out["other"] = await until(other, "ended")
        out["host"] = await until(host, "ended")
        return out

    out = run(settings, rooms, scenario)
    assert out["guest"]["reason"] == "removed"
    assert out["others_still_in"], "only the removed invitee is taken out"
    assert out["other"]["reason"] == "ended"
    assert out["host"]["reason"] == "ended"
    assert rooms.audit_events(conference_id=conference.id)[0].kind is AuditKind.CONFERENCE_ENDED


def test_a_deleted_conference_closes_its_sockets_and_refuses_new_ones(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> tuple[str, str]:
        ticket = tickets.issue(key, conference.id, "Anne", "audio", None)
        socket = await client.ws_connect(f"/ws/room/{ticket}")
        await socket.send_json(await offer())
        await until(socket, "answer")
        await asyncio.to_thread(rooms.delete_conference, conference.id)
        told = (await until(socket, "ended"))["reason"]
        again = await client.ws_connect(f"/ws/room/{ticket}")
        return told, (await until(again, "ended"))["reason"]

    assert run(settings, rooms, scenario) == ("cancelled", "cancelled")


@pytest.mark.parametrize("lobby", ["off", "always"])
def test_a_reconnecting_page_comes_back_muted_and_in_even_past_the_window(
    settings: Settings, rooms: Rooms, clock: FakeClock, lobby: str
) -> None:
    hour = (clock.now, clock.now + timedelta(hours=1))
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode=lobby, start=hour[0],
                                                         end=hour[1]))  # fmt: skip
    engine = Engine()
    room = str(conference.id)

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        ticket = tickets.issue(key, conference.id, "Anne", "audio", None)
        out: dict[str, Any] = {}
        first = await client.ws_connect(f"/ws/room/{ticket}")
        await first.send_json(await offer())
        await until(first, "answer")
        if lobby == "always":
            await until(first, "waiting")
            live = client.app[LIVE]
            assert live.lobby is not None
            leg = live.lobby.in_room(room)[0]
            live.lobby.admit(leg)
        room_pass = (await until(first, "pass"))["pass"]
        await first.close()
        clock.advance(timedelta(hours=2))  # the window closed while the page was away
        late = await client.ws_connect(f"/ws/room/{ticket}")
        await late.send_json(await offer())
        out["without_pass"] = (await until(late, "ended"))["reason"]
        back = await client.ws_connect(f"/ws/room/{ticket}")
        await back.send_json(await offer(muted=True, room_pass=room_pass))
        await until(back, "answer")
        await until(back, "participants")
        out["in_room"] = [p for p in engine.participants(room) if p["label"] == "Anne"]
        forged = room_pass[:-1] + ("B" if room_pass.endswith("A") else "A")  # always another one (not 1 in 4096)
        out["forged"] = not tickets.has_pass(key, ticket, forged)
        await back.close()
        return out

    out = run(settings, rooms, scenario, engine=engine)
    assert out["without_pass"] == "ended", "a ticket taken before the end does not join after it"
    assert len(out["in_room"]) == 1, "the page came back into the room, not the lobby"
    assert out["in_room"][0]["muted"] is True, "the page's mute was lost on reconnecting"
    assert out["forged"]


def test_garbage_on_the_room_socket_gets_an_error_and_the_socket_stays_up(
    settings: Settings, rooms: Rooms, caplog: pytest.LogCaptureFixture
) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="off"))

    async def scenario(client: Client, key: bytes) -> list[str]:
        socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference.id, 'Anne', 'audio', None)}")
        await socket.send_json(await offer())
        await until(socket, "answer")
        errors = []
        for garbage in (
            json.dumps({"type": "candidate", "candidate": "candidate:garbage", "sdpMid": "0", "sdpMLineIndex": 0}),
            json.dumps({"type": "candidate", "candidate": "candidate:1 1 udp x 127.0.0.1", "sdpMLineIndex": "z"}),
            json.dumps({"type": "candidate", "candidate": "candidate:1 1 UDP 1 127.0.0.1 notaport typ host"}),
            "[" * 30_000 + "]" * 30_000,
            '{"type": ' + "[" * 20_000 + "]" * 20_000 + "}",
        ):
            await socket.send_str(garbage)
            errors.append((await until(socket, "error"))["message"])
        await socket.send_json({"type": "mute", "muted": True})
        await asyncio.sleep(0.2)
        assert not socket.closed, "the socket was dropped"
        await socket.close()
        return errors

    errors = run(settings, rooms, scenario)
    assert len(errors) == 5
    assert not [r for r in caplog.records if r.exc_info], "a traceback in the log"
