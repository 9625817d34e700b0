"""Cameras through the room's channel and a real Janus (Debian's): a page publishes, the others are told and
watch it (aiortc peers stand for the pages and decode the frames), a screen share goes the same way, one at a time,
with the pointers of those who watch it, a page in the lobby neither publishes nor watches, and a Janus killed
mid-call comes back with every page told to publish again."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from bridge.janus.rooms import JanusRooms
from bridge.webrtc import pin_host_addresses
from config import Settings, load_settings
from rooms import ConferenceDraft, Rooms
from tests.bridge.janus_pages import Camera, Viewer, embedded
from tests.tools import require
from tests.web.test_room_follows import Client, offer, run, until
from web import tickets
from web.app import LIVE


async def _page(client: Client, key: bytes, conference_id: Any, name: str, *, host: bool = False) -> tuple[Any, str]:
    socket = await client.ws_connect(f"/ws/room/{tickets.issue(key, conference_id, name, 'audio', None, host=host)}")
    leg = (await until(socket, "welcome"))["you"]
    await socket.send_json(await offer())
    await until(socket, "answer")
    return socket, leg


@pytest.mark.e2e
def test_a_camera_goes_through_janus_to_the_others_and_comes_back_after_janus_dies(
    tmp_path: Path, settings: Settings, rooms: Rooms
) -> None:
    require("janus")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="until-host"))
    janus_settings = load_settings(environ={"PASSERELLE_VIDEO__FOLDER": str(tmp_path / "janus")})

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        live = client.app[LIVE]
        janus_rooms = live.janus = JanusRooms()
        janus_rooms.restarted, janus_rooms.on_event = live.janus_restarted, live.janus_event
        camera, viewer, again = Camera(), Viewer(), Camera()
        try:
            async with embedded(janus_settings, janus_rooms.ready) as janus:
                pin_host_addresses(())  # Janus is not on loopback: the pages reach it on this machine's other ones
                host, host_leg = await _page(client, key, conference.id, "Dr Martin", host=True)
                anne, anne_leg = await _page(client, key, conference.id, "Anne")
                await until(anne, "pass")
                await host.send_json({"type": "video-publish", "sdp": await camera.offer()})
                await camera.answered((await until(host, "video-answer"))["sdp"])
                out["feeds"] = (await until(anne, "video-feeds"))["list"]
                await anne.send_json({"type": "video-watch", "legs": [host_leg, "web-999"]})
                video_offer = await until(anne, "video-offer")
                out["mids"] = list(video_offer["mids"].values())
                await anne.send_json({"type": "video-start", "sdp": await viewer.answer(video_offer["sdp"])})
                out["frames"] = await viewer.until_frames(10, 15)
                # Janus says it loses what it sends Anne (its "slowlink" on her subscriber handle): she is told.
                watcher = live.feeds[anne_leg][1]
                live.janus_event(anne_leg, {"janus": "slowlink", "sender": watcher.subscriber, "mid": "0",
                                            "media": "video", "uplink": False, "lost": 9})  # fmt: skip
                out["slow"] = await until(anne, "video-slow")
                await anne.send_json({"type": "video-candidate", "to": "nobody-ok", "candidate": ""})
                out["bad_side"] = (await until(anne, "error"))["message"]

                # Janus dies: it comes back, every page is told to publish and watch again.
                assert janus.process is not None
                os.kill(janus.process.pid, signal.SIGKILL)
                out["restart_host"] = await until(host, "video-restart", limit_s=15)
                await until(anne, "video-restart", limit_s=5)
                out["feeds_after"] = dict(live.hubs.get(str(conference.id)).feeds)
                await host.send_json({"type": "video-publish", "sdp": await again.offer()})
                await again.answered((await until(host, "video-answer", limit_s=15))["sdp"])
                out["republished"] = True
                out["feeds_again"] = (await until(anne, "video-feeds"))["list"]
                await host.send_json({"type": "video-unpublish"})
                out["unpublished"] = (await until(anne, "video-feeds"))["list"]
                await host.close()
                await anne.close()
        finally:
            for page in (camera, viewer, again):
                await page.close()
        out["host_leg"], out["anne_leg"] = host_leg, anne_leg
        return out

    out = run(settings, rooms, scenario)
    assert out["feeds"] == [out["host_leg"]]
    assert out["mids"] == [{"leg": out["host_leg"], "source": "camera"}], "an unknown leg was watched"
    assert out["frames"] >= 10, f"Anne's page decoded {out['frames']} frames of the host's camera"
    assert out["slow"] == {"type": "video-slow"}
    assert out["bad_side"] == "to: publisher, subscriber or screen"
    assert out["restart_host"] == {"type": "video-restart"}
    assert out["feeds_after"] == {}
    assert out["republished"] is True
    assert out["feeds_again"] == [out["host_leg"]]
    assert out["unpublished"] == []


def test_a_page_waiting_in_the_lobby_may_not_publish_or_watch(settings: Settings, rooms: Rooms) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation", lobby_mode="always"))

    async def scenario(client: Client, key: bytes) -> list[str]:
        client.app[LIVE].janus = JanusRooms()  # no Janus behind it: a refusal must come before any use of it
        guest, _ = await _page(client, key, conference.id, "Anne")
        await until(guest, "waiting")
        said = []
        for message in ({"type": "video-publish", "sdp": "v=0"}, {"type": "video-watch", "legs": ["web-1"]}):
            await guest.send_json(message)
            said.append((await until(guest, "error"))["message"])
        await guest.close()
        return said

    assert run(settings, rooms, scenario) == ["not in the room yet", "not in the room yet"]


@pytest.mark.e2e
def test_a_screen_share_reaches_the_others_one_at_a_time_with_their_pointers_and_a_host_may_stop_it(
    tmp_path: Path, settings: Settings, rooms: Rooms
) -> None:
    require("janus")
    conference = rooms.create_conference(ConferenceDraft(name="Formation", lobby_mode="off"))
    janus_settings = load_settings(environ={"PASSERELLE_VIDEO__FOLDER": str(tmp_path / "janus")})

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        live = client.app[LIVE]
        janus_rooms = live.janus = JanusRooms()
        janus_rooms.restarted, janus_rooms.on_event = live.janus_restarted, live.janus_event
        screen, other, viewer = Camera(), Camera(), Viewer()
        try:
            async with embedded(janus_settings, janus_rooms.ready):
                pin_host_addresses(())
                host, host_leg = await _page(client, key, conference.id, "Dr Martin", host=True)
                anne, anne_leg = await _page(client, key, conference.id, "Anne")
                await until(anne, "pass")
                await anne.send_json({"type": "video-publish", "source": "screen", "sdp": await screen.offer()})
                answer = await until(anne, "video-answer")
                out["answer_source"] = answer["source"]
                await screen.answered(answer["sdp"])
                feeds = await until(host, "video-feeds")
                out["listed"] = (feeds["list"], feeds["screens"])
                # A second share while Anne's is on: refused, until a host allows several.
                await host.send_json({"type": "video-publish", "source": "screen", "sdp": await other.offer()})
                out["second"] = (await until(host, "error"))["message"]
                # A host allows several shares: the host's own goes up beside Anne's.
                await host.send_json({"type": "settings", "many_screens": True})
                out["many"] = (await until(anne, "settings"))["many_screens"]
                await host.send_json({"type": "video-publish", "source": "screen", "sdp": await other.offer()})
                await other.answered((await until(host, "video-answer"))["sdp"])
                out["both"] = (await until(anne, "video-feeds"))["screens"]
                await host.send_json({"type": "video-unpublish", "source": "screen"})
                out["one_again"] = (await until(anne, "video-feeds"))["screens"]
                await host.send_json({"type": "video-watch", "legs": [], "screens": [anne_leg]})
                video_offer = await until(host, "video-offer")
                out["mids"] = list(video_offer["mids"].values())
                await host.send_json({"type": "video-start", "sdp": await viewer.answer(video_offer["sdp"])})
                out["frames"] = await viewer.until_frames(10, 15)
                mid = next(iter(video_offer["mids"]))
                await host.send_json({"type": "video-layers", "mids": {mid: 3}})
                out["bad_layer"] = (await until(host, "error"))["about"]
                await host.send_json({"type": "video-layers", "mids": {mid: None}})  # paused: no error
                await host.send_json({"type": "video-layers", "mids": {mid: 0}})
                # The host points on Anne's screen three times at once: Anne gets the first at once, the last
                # ~0.1 s later (10 a second, and where the pointer came to rest), never the one between.
                for x in (0.5, 0.55, 0.6):
                    await host.send_json({"type": "pointer", "screen": anne_leg, "x": x, "y": 0.25})
                out["pointer"] = await until(anne, "pointer")
                out["rest"] = await until(anne, "pointer")
                await host.send_json({"type": "pointer", "screen": anne_leg, "x": 1.5, "y": 0.25})
                out["off_screen"] = (await until(host, "error"))["message"]
                await host.send_json({"type": "pointer", "screen": host_leg, "x": 0.5, "y": 0.5})
                out["no_share"] = (await until(host, "error"))["message"]
                # The host stops Anne's share: she is told, everyone's list loses it.
                await host.send_json({"type": "stop-share", "leg": anne_leg})
                out["stopped"] = await until(anne, "share-stopped")
                out["after_stop"] = (await until(host, "video-feeds"))["screens"]
                await anne.send_json({"type": "stop-share", "leg": host_leg})
                out["guest_stop"] = (await until(anne, "error"))["message"]
                await host.close()
                await anne.close()
        finally:
            for page in (screen, other, viewer):
                await page.close()
        out["host_leg"], out["anne_leg"] = host_leg, anne_leg
        return out

    out = run(settings, rooms, scenario)
    anne = out["anne_leg"]
    assert out["answer_source"] == "screen"
    assert out["listed"] == ([], [anne]), "a screen share is listed as a screen, not a camera"
    assert out["second"] == "someone is already sharing their screen: one at a time"
    assert out["many"] is True
    assert out["both"] == sorted([anne, out["host_leg"]])
    assert out["one_again"] == [anne]
    assert out["mids"] == [{"leg": anne, "source": "screen"}]
    assert out["frames"] >= 10, f"the host decoded {out['frames']} frames of Anne's screen"
    assert out["bad_layer"] == "video-layers"
    assert out["pointer"] == {"type": "pointer", "leg": out["host_leg"], "name": "Dr Martin", "screen": anne,
                              "x": 0.5, "y": 0.25}  # fmt: skip
    assert out["rest"]["x"] == 0.6
    assert out["off_screen"].startswith("x and y: both from 0 to 1")
    assert out["no_share"] == "nobody shares that screen"
    assert out["stopped"] == {"type": "share-stopped"}
    assert out["after_stop"] == []
    assert out["guest_stop"] == "only the conference's host may do this"


@pytest.mark.e2e
def test_a_camera_turned_off_and_on_again_is_watched_again_whoever_of_janus_and_the_page_drops_it_first(
    tmp_path: Path, settings: Settings, rooms: Rooms
) -> None:
    """Janus drops an unpublished camera from every subscription by itself (a new offer to each watcher): the
    page's own request to stop watching it comes after, and once the camera is back the page watches it again."""
    require("janus")
    conference = rooms.create_conference(ConferenceDraft(name="Consultation"))
    janus_settings = load_settings(environ={"PASSERELLE_VIDEO__FOLDER": str(tmp_path / "janus")})

    async def scenario(client: Client, key: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        live = client.app[LIVE]
        janus_rooms = live.janus = JanusRooms()
        janus_rooms.restarted, janus_rooms.on_event = live.janus_restarted, live.janus_event
        camera, viewer, again = Camera(), Viewer(), Camera()
        seen: list[dict[str, Any]] = []
        try:
            async with embedded(janus_settings, janus_rooms.ready):
                pin_host_addresses(())
                host, host_leg = await _page(client, key, conference.id, "Dr Martin", host=True)
                anne, _ = await _page(client, key, conference.id, "Anne")
                await host.send_json({"type": "video-publish", "sdp": await camera.offer()})
                await camera.answered((await until(host, "video-answer"))["sdp"])
                await until(anne, "video-feeds")
                await anne.send_json({"type": "video-watch", "legs": [host_leg]})
                await anne.send_json(
                    {"type": "video-start", "sdp": await viewer.answer((await until(anne, "video-offer"))["sdp"])}
                )
                out["frames"] = await viewer.until_frames(5, 15)
                # Off: Janus's own offer (the camera gone) reaches Anne before her page asks to stop watching it.
                await host.send_json({"type": "video-unpublish"})
                dropped = await until(anne, "video-offer", seen=seen)
                out["dropped"] = list(dropped["mids"].values())
                await anne.send_json({"type": "video-start", "sdp": await viewer.answer(dropped["sdp"])})
                await anne.send_json({"type": "video-watch", "legs": []})
                # On again: her page asks to watch it, and is offered it.
                await host.send_json({"type": "video-publish", "sdp": await again.offer()})
                await again.answered((await until(host, "video-answer"))["sdp"])
                out["feeds"] = (await until(anne, "video-feeds", seen=seen))["list"]
                await anne.send_json({"type": "video-watch", "legs": [host_leg]})
                out["offered"] = list((await until(anne, "video-offer", seen=seen))["mids"].values())
                await host.close()
                await anne.close()
        finally:
            for page in (camera, viewer, again):
                await page.close()
        out["host_leg"] = host_leg
        out["errors"] = [m for m in seen if m["type"] == "error"]
        return out

    out = run(settings, rooms, scenario)
    assert out["frames"] >= 5
    assert {"leg": out["host_leg"], "source": "camera"} not in out["dropped"]
    assert out["feeds"] == [out["host_leg"]]
    assert {"leg": out["host_leg"], "source": "camera"} in out["offered"], "the camera back on was never offered"
    assert out["errors"] == []
