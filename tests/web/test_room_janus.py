"""Cameras through the room's channel and a real Janus (Debian's): a page publishes, the others are told and
watch it (aiortc peers stand for the pages and decode the frames), a page in the lobby neither publishes nor
watches, and a Janus killed mid-call comes back with every page told to publish again."""

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
    assert out["mids"] == [out["host_leg"]], "an unknown leg was watched, or the m-line names no one"
    assert out["frames"] >= 10, f"Anne's page decoded {out['frames']} frames of the host's camera"
    assert out["bad_side"] == "to: publisher or subscriber"
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
