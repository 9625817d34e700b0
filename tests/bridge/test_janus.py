"""The embedded Janus, for real (Debian's `janus`): only the VideoRoom plugin and the Unix-socket transport loaded,
its API in a folder private to the service, a room whose secret and PIN are needed to change or join it, and a
Janus killed mid-way started again with its rooms made again by ``on_ready``."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from bridge.janus import JanusClient, JanusError
from config import Settings, load_settings
from tests.bridge.janus_pages import Camera, Viewer, embedded
from tests.tools import require

ROOM = 4_503_599_627_370_001  # beyond 32 bits, within a JSON number's exact integers
VIDEOROOM = "janus.plugin.videoroom"


def settings_for(folder: Path, **extra: str) -> Settings:
    return load_settings(environ={"PASSERELLE_VIDEO__FOLDER": str(folder / "janus"),
                                  "PASSERELLE_WEBRTC__HOST_ADDRESSES": "127.0.0.1", **extra})  # fmt: skip


@pytest.mark.e2e
def test_janus_runs_only_what_is_used_guards_its_rooms_and_comes_back_after_a_kill(tmp_path: Path) -> None:
    require("janus")
    settings = settings_for(tmp_path)
    made: list[int] = []

    async def ready(client: JanusClient) -> None:
        handle = await client.attach(VIDEOROOM)
        await client.message(handle, {"request": "create", "room": ROOM, "secret": "s-9f2c", "pin": "p-41d0",
                                      "is_private": True, "publishers": 16})  # fmt: skip
        made.append(ROOM)

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with embedded(settings, ready) as janus:
            client = janus.client
            assert client is not None
            info = await client.info()
            out["plugins"], out["transports"] = sorted(info["plugins"]), sorted(info["transports"])
            handle = await client.attach(VIDEOROOM)
            listed, _ = await client.message(handle, {"request": "list"})
            out["listed"] = [room["room"] for room in listed["list"]]
            with pytest.raises(JanusError) as refused:
                await client.message(handle, {"request": "destroy", "room": ROOM, "secret": "s-0000"})
            out["destroy_with_a_wrong_secret"] = refused.value.code
            with pytest.raises(JanusError) as unlisted:
                await client.message(handle, {"request": "join", "ptype": "publisher", "room": ROOM,
                                              "pin": "p-0000"}, later=True)  # fmt: skip
            out["join_with_a_wrong_pin"] = unlisted.value.code
            joined, _ = await client.message(handle, {"request": "join", "ptype": "publisher", "room": ROOM,
                                                      "pin": "p-41d0", "display": "web-1"}, later=True)  # fmt: skip
            out["joined"] = joined["videoroom"]
            # A message as long as a page's answer for twenty cameras (30 kB) is taken: Janus's Unix-socket
            # transport dropped any over 8 kB without a word, and the page's videos never started.
            long, _ = await client.message(handle, {"request": "exists", "room": ROOM, "padding": "x" * 30_000})
            out["long_message"] = long.get("exists")
            assert janus.process is not None
            killed_at = asyncio.get_running_loop().time()
            os.kill(janus.process.pid, signal.SIGKILL)
            while janus.starts < 2 or not janus.ready.is_set():
                await asyncio.sleep(0.05)
            out["back_after_s"] = asyncio.get_running_loop().time() - killed_at
            again = janus.client
            assert again is not None
            assert again is not client
            handle = await again.attach(VIDEOROOM)
            exists, _ = await again.message(handle, {"request": "exists", "room": ROOM})
            out["exists_again"] = exists["exists"]
        out["stopped"] = janus.process is None
        return out

    out: dict[str, Any] = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert out["plugins"] == [VIDEOROOM]
    assert out["transports"] == ["janus.transport.websockets"]
    assert ROOM not in out["listed"], "a room is listed to anyone who asks"
    assert out["destroy_with_a_wrong_secret"] == 433  # JANUS_VIDEOROOM_ERROR_UNAUTHORIZED
    assert out["join_with_a_wrong_pin"] == 433
    assert out["joined"] == "joined"
    assert out["long_message"] is True
    assert out["back_after_s"] < 10, f"Janus came back after {out['back_after_s']:.1f} s"
    assert made == [ROOM, ROOM], "the rooms were not made again after the restart"
    assert out["exists_again"] is True
    assert out["stopped"] is True
    folder = tmp_path / "janus"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    config = (folder / "janus.jcfg").read_text()
    assert "ice_enforce_list" not in config, "loopback enforced: Janus would gather no address at all"
    assert 'rtp_port_range = "20000-40000"' in config
    assert f"event_loops = {os.cpu_count()}" in config  # shared loops, not a thread per handle
    assert sorted(p.name for p in (folder / "plugins").iterdir()) == ["libjanus_videoroom.so"]


def test_janus_gets_the_stun_server_of_webrtc_and_no_turn_server(tmp_path: Path) -> None:
    from bridge.janus import write_config

    servers = "stun:stun.example.org:3478,turn:turn.example.org:443?transport=tcp"
    settings = settings_for(
        tmp_path, PASSERELLE_WEBRTC__ICE_SERVERS=servers,
        PASSERELLE_WEBRTC__TURN_USERNAME="bridge", PASSERELLE_WEBRTC__TURN_PASSWORD="t0p",
        PASSERELLE_VIDEO__RTP_PORT_MIN="30000", PASSERELLE_VIDEO__RTP_PORT_MAX="30999",
    )  # fmt: skip
    api = write_config(settings, tmp_path / "janus")
    config = (tmp_path / "janus" / "janus.jcfg").read_text()
    for line in ('stun_server = "stun.example.org"', "stun_port = 3478", 'rtp_port_range = "30000-30999"'):
        assert line in config, line
    assert "turn_server" not in config, "Janus would relay every feed through the pages' TURN server"
    assert "t0p" not in config
    assert stat.S_IMODE((tmp_path / "janus" / "janus.jcfg").stat().st_mode) == 0o600
    assert api == tmp_path / "janus" / "janus-ws.sock"
    assert str(api) in (tmp_path / "janus" / "janus.transport.websockets.jcfg").read_text()


@pytest.mark.e2e
def test_a_page_s_camera_reaches_another_page_through_the_room_in_janus(tmp_path: Path) -> None:
    """Two aiortc peers stand for the pages: one publishes a camera (VP8), the other subscribes to its feed and
    decodes frames; the SDPs go through JanusRooms as they will through the room's channel."""

    from bridge.janus.rooms import JanusRooms
    from bridge.webrtc import pin_host_addresses

    require("janus")
    pin_host_addresses(())  # Janus never uses loopback: the pages reach it on this machine's other addresses
    settings = settings_for(tmp_path)
    events: list[tuple[str, str]] = []
    rooms = JanusRooms(lambda leg, message: events.append((leg, str(message.get("janus")))))

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        publisher, viewer = Camera(), Viewer()
        try:
            async with embedded(settings, rooms.ready):
                camera = rooms.feed("conference-1", "web-1")
                answer = await rooms.publish(camera, {"type": "offer", "sdp": await publisher.offer()})
                await publisher.answered(answer["sdp"])
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 10
                while not (feeds := await rooms.feeds_in("conference-1")) and loop.time() < deadline:
                    await asyncio.sleep(0.2)
                out["feeds"] = [(f["id"], f["display"]) for f in feeds]
                watcher = rooms.feed("conference-1", "web-2")
                offer, mids = await rooms.watch(watcher, {camera.feed_id})
                assert offer is not None
                out["mids"] = set(mids.values())
                out["unchanged"] = await rooms.watch(watcher, {camera.feed_id})
                await rooms.start(watcher, {"type": "answer", "sdp": await viewer.answer(offer["sdp"])})
                out["frames"] = await viewer.until_frames(10, 15)
                last = viewer.frames[-1] if viewer.frames else None
                out["size"] = (last.width, last.height) if last is not None else None
                await rooms.leave(camera)
                await rooms.leave(watcher)
                deadline = loop.time() + 5  # Janus tears the handles down in its own threads
                while (left := await rooms.feeds_in("conference-1")) and loop.time() < deadline:
                    await asyncio.sleep(0.1)
                out["after_leaving"] = left
                await rooms.close_room("conference-1")
        finally:
            await publisher.close()
            await viewer.close()
        return out

    out = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert len(out["feeds"]) == 1
    assert out["feeds"][0][1] == "web-1"
    assert out["frames"] >= 10, f"the viewer decoded {out['frames']} frames"
    assert out["size"] == (640, 480)
    assert out["mids"] == {out["feeds"][0][0]}, "the offer's m-lines do not say which feed they carry"
    assert out["unchanged"] == (None, {})
    assert out["after_leaving"] == []
    assert ("web-1", "webrtcup") in events, events
