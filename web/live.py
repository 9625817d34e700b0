"""The room WebSocket (``/ws/room/<ticket>``): WebRTC signalling for a browser participant, whose audio leg then
joins the conference's engine room beside the phone legs.

Messages (JSON): the browser sends ``{"type": "offer", "sdp"}`` then its ICE candidates as
``{"type": "candidate", "candidate", "sdpMid", "sdpMLineIndex"}`` (trickled); the bridge answers
``{"type": "answer", "sdp"}`` with its own candidates inside (aiortc gathers them before answering), or
``{"type": "error", "message"}``; then ``{"type": "participants", "list"}`` whenever the room changes (who, phone
or web, talking, muted). The browser mutes itself with ``{"type": "mute", "muted": true|false}``. Closing the
socket (a closed tab) takes the leg out of the room at once.

The offer carries the page's state, so a page that reconnects by itself (a blip, a restart) comes back as it was:
``"muted"``, and ``"pass"`` — what the bridge sent as ``{"type": "pass", "pass"}`` once the browser was in the room —
which takes it straight back in, past the lobby and past the end of the window. The socket checks when it opens,
and every few seconds, that the conference still exists, is in its window (or the browser has its pass) and, for
an invitee's ticket, that the invitee is still invited; otherwise, and when the conference is deleted, ended by
its host (``{"type": "end"}`` from a host), or the invitee removed, it sends ``{"type": "ended", "reason":
"cancelled" | "ended" | "removed" | "not-open"}`` and closes. Phone callers of an ended conference hear it and
are hung up (``on_room_end``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from aiohttp import WSMsgType, web

from bridge.callflow import Lobby
from bridge.engine import Engine
from bridge.opus import SharedOpus
from bridge.webrtc import WebRtcLeg
from config import LobbyMode, Settings
from rooms import Rooms
from rooms.errors import NotFoundError
from rooms.events import ChangeKind, RoomChange
from rooms.schedule import WindowState
from rooms.views import ConferenceView
from web import tickets
from web.video import VideoRooms

log = logging.getLogger(__name__)
MAX_MESSAGE = 64 * 1024  # an SDP offer is a few kB
WATCH_S = 5.0  # how often an open socket looks at its conference again (changes made by another process or node)


class Live:
    def __init__(
        self, settings: Settings, rooms: Rooms, engine: Engine, key: bytes, lobby: Lobby | None = None
    ) -> None:
        self.settings, self.rooms, self.engine, self.key, self.lobby = settings, rooms, engine, key, lobby
        self._ids = itertools.count(1)
        self._hosts: dict[str, set[str]] = {}  # room → legs of its hosts, connected now
        self._mode: dict[str, LobbyMode] = {}  # room → its lobby mode, as last seen
        webrtc = settings.webrtc
        self.video = VideoRooms()
        self.opus = SharedOpus(webrtc.opus_bitrate, webrtc.opus_complexity, webrtc.opus_application.value)
        self._sockets: dict[str, dict[str, tuple[web.WebSocketResponse, tickets.Ticket]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_room_end: Callable[[str], None] | None = None  # `passerelle serve`: the call flow's end_room
        rooms.on_change(self._changed)

    # -- the room follows its conference -------------------------------------------------------------------------

    def _changed(self, change: RoomChange) -> None:
        """From the thread that made the change: handed over to the loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.apply, change)

    def apply(self, change: RoomChange) -> None:
        """Take out of the room those the change concerns: every browser (told why) and, unless only an invitee
        was removed, every phone caller."""
        room = str(change.conference_id)
        for socket, ticket in list(self._sockets.get(room, {}).values()):
            if change.kind is ChangeKind.INVITEE_REMOVED and ticket.invitee_id != change.invitee_id:
                continue
            self._spawn(self._tell_and_close(socket, change.kind.value))
        if change.kind is not ChangeKind.INVITEE_REMOVED and self.on_room_end is not None:
            self.on_room_end(room)
        if self.lobby is not None and change.kind is not ChangeKind.INVITEE_REMOVED:
            for leg in self.lobby.in_room(room):
                if leg.startswith("web-"):
                    self.lobby.deny(leg)

    async def watch_rooms(self, stop: asyncio.Event) -> None:
        """Every WATCH_S, the conferences with someone in their room or lobby (phones only, too) are looked at
        again: one deleted by another process or node takes its people out here as well."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_S)
            if stop.is_set():
                return
            live = {str(r).removeprefix("lobby:") for r in self.engine.rooms()} - self._watched_by_sockets()
            for room in live:
                try:
                    conference_id = uuid.UUID(room)
                except ValueError:
                    continue  # the voice menu's own rooms
                try:
                    await asyncio.to_thread(self.rooms.get_conference, conference_id)
                except NotFoundError:
                    log.info("conference %s is gone: its room is emptied", room)
                    self.apply(RoomChange(conference_id, ChangeKind.DELETED))
                except Exception:  # the database away for a moment: next round
                    log.exception("room watch: conference %s could not be read", room)

    def _watched_by_sockets(self) -> set[str]:
        return {room for room, members in self._sockets.items() if members}

    async def restarting(self) -> None:
        """The service stops: every browser is told (its page reconnects by itself once it is back)."""
        sockets = [socket for members in self._sockets.values() for socket, _ in members.values()]
        await asyncio.gather(*(self._tell_and_close(socket, "restarting", kind="restarting") for socket in sockets),
                             return_exceptions=True)  # fmt: skip

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _tell_and_close(socket: web.WebSocketResponse, reason: str, kind: str = "ended") -> None:
        if socket.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):  # gone meanwhile
            await socket.send_json({"type": kind, "reason": reason})
        await socket.close()

    async def _refusal(self, ticket: tickets.Ticket, *, passed: bool) -> str | None:
        """Why this ticket may not be in the room now, or None: the conference deleted, outside its window (unless
        the browser was in: ``passed``), or the invitee no longer invited."""
        try:
            conference = await asyncio.to_thread(self.rooms.get_conference, ticket.conference_id)
        except NotFoundError:
            return ChangeKind.DELETED.value
        if ticket.invitee_id is not None:
            try:
                await asyncio.to_thread(self.rooms.get_invitee, ticket.invitee_id)
            except NotFoundError:
                return ChangeKind.INVITEE_REMOVED.value
        return None if passed else self._outside_window(conference)

    def _outside_window(self, conference: ConferenceView) -> str | None:
        state = conference.window.state(self.rooms.now())
        if state is WindowState.ENDED:
            return ChangeKind.ENDED.value
        return "not-open" if state is WindowState.NOT_YET_OPEN else None

    async def _watch(self, socket: web.WebSocketResponse, ticket: tickets.Ticket) -> None:
        """Every few seconds: a deletion or removal made elsewhere (the command line, another node) ends it too."""
        while not socket.closed:
            await asyncio.sleep(WATCH_S)
            reason = await self._refusal(ticket, passed=True)  # those in may run over the window
            if reason is not None:
                kind = ChangeKind(reason)
                self.apply(RoomChange(ticket.conference_id, kind, ticket.invitee_id))
                return

    def host_in(self, room: Hashable) -> bool:
        """Is a host of this conference in its room (for the lobby's until-host mode)?"""
        return bool(self._hosts.get(str(room)))

    def _configuration(self) -> Any:
        from aiortc import RTCConfiguration, RTCIceServer

        webrtc = self.settings.webrtc
        servers = [
            RTCIceServer(urls=url, username=webrtc.turn_username or None,
                         credential=webrtc.turn_password.reveal() or None) if url.startswith("turn")
            else RTCIceServer(urls=url)
            for url in webrtc.ice_servers
        ]  # fmt: skip
        return RTCConfiguration(iceServers=servers)

    async def _presence(self, socket: web.WebSocketResponse, room: str, leg_id: str, host: bool,
                        slots: list[tuple[str, Any]] | None = None, camera: Any = None) -> None:  # fmt: skip
        """The room's participant list to this browser, and to hosts who waits in the lobby: sent when it changes,
        looked at 4 times a second. While it runs, the browser is in the room's video too."""
        if slots is not None:
            self.video.enter(room, leg_id, self.engine.labels.get(leg_id, ""), camera, slots, socket.send_json)
        try:
            await self._presence_loop(socket, room, leg_id, host)
        finally:
            self.video.leave(room, leg_id)

    async def _presence_loop(self, socket: web.WebSocketResponse, room: str, leg_id: str, host: bool) -> None:
        last: list[dict[str, object]] | None = None
        last_waiting: list[dict[str, str]] | None = None
        while not socket.closed:
            now = [{**p, "you": p["id"] == leg_id} for p in self.engine.participants(room)]
            if now != last:
                await socket.send_json({"type": "participants", "list": now})
                last = now
            if host and self.lobby is not None:
                waiting = [{"id": leg, "label": self.engine.labels.get(leg, "")} for leg in self.lobby.in_room(room)]
                if waiting != last_waiting:
                    await socket.send_json({"type": "lobby", "list": waiting})
                    last_waiting = waiting
            await asyncio.sleep(0.25)

    def _must_wait(self, mode: LobbyMode, room: str, host: bool) -> bool:
        if host or self.lobby is None:
            return False
        return mode is LobbyMode.ALWAYS or (mode is LobbyMode.UNTIL_HOST and not self.host_in(room))

    async def _wait_for_host(self, socket: web.WebSocketResponse, leg_id: str, room: str, lobby: Lobby, room_pass: str,
                             slots: list[tuple[str, Any]] | None = None, camera: Any = None) -> None:  # fmt: skip
        """A browser in the lobby: hears nothing, is not heard, until a host admits it (or one comes, in until-host
        mode: hosts see it in their panel either way)."""
        decision = lobby.wait(leg_id, room)
        await socket.send_json({"type": "waiting"})
        while not decision.done():
            if self.host_in(room) and self._mode.get(room) is LobbyMode.UNTIL_HOST:
                lobby.admit(leg_id)
            await asyncio.wait({decision}, timeout=0.25)
        if decision.result() and leg_id in self.engine:
            self.engine.move(leg_id, room)
            await socket.send_json({"type": "admitted"})
            await socket.send_json({"type": "pass", "pass": room_pass})
            await self._presence(socket, room, leg_id, False, slots, camera)
        else:
            await socket.send_json({"type": "denied"})
            await socket.close()

    async def room_socket(self, request: web.Request) -> web.StreamResponse:
        self._loop = asyncio.get_running_loop()
        text = request.match_info["ticket"]
        try:
            ticket = tickets.read(self.key, text)
        except tickets.BadTicket:
            raise web.HTTPForbidden(text="this room link is not valid any more: open your invitation again") from None
        socket = web.WebSocketResponse(heartbeat=2.0, max_msg_size=MAX_MESSAGE)  # a dead tab is noticed in ≤ 4 s
        await socket.prepare(request)
        refused = await self._refusal(ticket, passed=True)  # the window is judged with the offer (and its pass)
        if refused is not None:
            await self._tell_and_close(socket, refused)
            return socket
        conference = await asyncio.to_thread(self.rooms.get_conference, ticket.conference_id)
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from aiortc.sdp import candidate_from_sdp

        leg_id = f"web-{next(self._ids)}"
        pc = RTCPeerConnection(self._configuration())
        leg = WebRtcLeg(leg_id, pc, shared=self.opus)
        room = str(conference.id)
        self._mode[room] = conference.lobby_mode
        presence: asyncio.Task[None] | None = None
        admission: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()

        camera: list[Any] = []

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":
                leg.receive_from(track)
            elif track.kind == "video" and ticket.media == "video" and not camera:
                camera.append(track)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                log.info("leg %s: connection %s", leg_id, pc.connectionState)
                leg.close()

        members = self._sockets.setdefault(room, {})
        members[leg_id] = (socket, ticket)
        watch = loop.create_task(self._watch(socket, ticket), name=f"watch {leg_id}")
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(message.data)
                    kind = data["type"]
                except (ValueError, KeyError, TypeError, RecursionError):  # deep nesting too: the sender's error
                    await socket.send_json({"type": "error", "message": "expected a JSON object with a type"})
                    continue
                if kind == "offer" and pc.remoteDescription is None:
                    passed = tickets.has_pass(self.key, text, data.get("pass"))
                    outside = None if passed else self._outside_window(conference)
                    if outside is not None:
                        await self._tell_and_close(socket, outside)
                        break
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=str(data.get("sdp", "")), type="offer"))
                    pc.addTrack(leg.track)
                    slots = self.video.open_slots(pc)
                    await pc.setLocalDescription(await pc.createAnswer())
                    await socket.send_json({"type": "answer", "sdp": pc.localDescription.sdp})
                    if ticket.host:
                        self._hosts.setdefault(room, set()).add(leg_id)
                    waits = not passed and self._must_wait(conference.lobby_mode, room, ticket.host)
                    self.engine.join(f"lobby:{room}" if waits else room, leg, listen_only=waits)
                    # As the page was before it reconnected; a listener's leg stays muted whatever its page says.
                    self.engine.set_muted(leg_id, data.get("muted") is True or ticket.media == "listen")
                    self.engine.labels[leg_id] = ticket.name
                    if not waits:
                        await socket.send_json({"type": "pass", "pass": tickets.room_pass(self.key, text)})
                    if waits and self.lobby is not None:
                        admission = loop.create_task(
                            self._wait_for_host(
                                socket,
                                leg_id,
                                room,
                                self.lobby,
                                tickets.room_pass(self.key, text),
                                slots,
                                camera[0] if camera else None,
                            )
                        )
                    else:
                        presence = loop.create_task(
                            self._presence(socket, room, leg_id, ticket.host, slots, camera[0] if camera else None)
                        )
                    log.info("leg %s (web) %s conference %s", leg_id, "waits to enter" if waits else "joined", room)
                elif kind == "mute" and leg_id in self.engine and ticket.media != "listen":
                    self.engine.set_muted(leg_id, bool(data.get("muted")))
                elif kind == "end" and ticket.host:
                    log.info("host %s ends conference %s for everyone", leg_id, room)
                    await asyncio.to_thread(self.rooms.end_conference, room)
                elif kind in ("admit", "deny") and ticket.host and self.lobby is not None:
                    waiting = str(data.get("leg", ""))
                    if waiting in self.lobby.in_room(room):  # only this conference's lobby
                        done = self.lobby.admit(waiting) if kind == "admit" else self.lobby.deny(waiting)
                        log.info("host %s: %s %s (%s)", leg_id, kind, waiting, "done" if done else "too late")
                elif kind == "candidate" and data.get("candidate"):
                    try:
                        candidate = candidate_from_sdp(str(data["candidate"]).removeprefix("candidate:"))
                        candidate.sdpMid = data.get("sdpMid") if isinstance(data.get("sdpMid"), str) else None
                        index = data.get("sdpMLineIndex")
                        candidate.sdpMLineIndex = index if isinstance(index, int) else None
                        await pc.addIceCandidate(candidate)
                    # A garbage candidate: said, not fatal (aiortc's parser checks with assert).
                    except (ValueError, IndexError, TypeError, KeyError, AssertionError):
                        await socket.send_json({"type": "error", "message": "this ICE candidate could not be read"})
                elif kind not in ("candidate",):
                    await socket.send_json({"type": "error", "message": f"unexpected {kind!r}"})
        except ValueError as exc:  # an SDP aiortc cannot use
            log.info("leg %s: bad offer (%s)", leg_id, exc)
            await socket.send_json({"type": "error", "message": "the browser's offer could not be used"})
        finally:
            watch.cancel()
            members.pop(leg_id, None)
            if not members:
                self._sockets.pop(room, None)
            self._hosts.get(room, set()).discard(leg_id)
            for task in (presence, admission):
                if task is not None:
                    task.cancel()
            if self.lobby is not None:
                self.lobby.waiting.pop(leg_id, None)
            leg.close()
            if leg_id in self.engine:
                self.engine.leave(leg_id)
            log.info("leg %s (web) left conference %s", leg_id, room)
        return socket
