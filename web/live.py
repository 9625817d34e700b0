"""The room WebSocket (``/ws/room/<ticket>``): a browser participant's channel to its room — WebRTC signalling for
its audio leg, which joins the conference's engine room beside the phone legs, and for its cameras and screen shares
through Janus (the page's own connections to it, Passerelle relaying their SDPs), then the room's life:
participants, lobby, hands, the host's actions. Every message is described, with who may send it, in
``web/protocol.py``; each has one small handler here (``Session.on_<type>``), and the room's hub (``web/hub.py``)
pushes what changes to everyone.

The offer carries the page's state, so a page that reconnects by itself (a blip, a restart) comes back as it was:
``"muted"``, and ``"pass"`` — what the bridge sent as ``{"type": "pass", "pass"}`` once the browser was in the room —
which takes it straight back in, past the lobby and past the end of the window. The socket checks when it opens,
and every few seconds, that the conference still exists, is in its window (or the browser has its pass) and, for
an invitee's ticket, that the invitee is still invited; otherwise, and when the conference is deleted, ended by
its host, or the invitee removed, it sends ``ended`` and closes. Phone callers of an ended conference hear it and
are hung up (``on_room_end``). Closing the socket (a closed tab) takes the leg out of the room at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web

from bridge.callflow import Lobby
from bridge.engine import Engine
from bridge.janus import JanusError, JanusGone
from bridge.janus.rooms import Feed, JanusRooms
from bridge.opus import SharedOpus
from bridge.webrtc import WebRtcLeg
from config import LobbyMode, Settings
from config.errors import PasserelleError
from notify.invitations import Invitations
from rooms import Rooms
from rooms.contacts import dialable_phone, mask_phone
from rooms.errors import ConflictError, NotFoundError, ValidationError
from rooms.events import ChangeKind, RoomChange
from rooms.models import DeliveryState
from rooms.schedule import WindowState
from rooms.views import ConferenceView
from web import protocol, tickets
from web.board import Board, BoardError
from web.hub import Hub, Hubs, Member, RateLimit
from web.protocol import Refused, Who
from web.room_files import RoomFiles

log = logging.getLogger(__name__)
WATCH_S = 5.0  # how often an open socket looks at its conference again (changes made by another process or node)
DENIED_S = 60.0  # a browser refused at the lobby cannot queue again with the same ticket before this
TAKEN_OUT_S = 3600.0  # nor one a host took out of the room
CHAT_LIMITS = ((5, 1.0), (60, 60.0))  # chat messages per participant: 5 a second, 60 a minute
INVITE_LIMITS = ((10, 3600.0),)  # invitations from the room per participant: 10 an hour
FOLLOW_S, FOLLOW_FOR_S = 2.0, 600.0  # an invitation's delivery is looked at every 2 s, for 10 minutes
CALL_LIMITS = ((20, 3600.0),)  # phones a host calls from the room: 20 an hour
RINGING_MAX = 5  # phones ringing at once for one room
WATCH_MAX = 25  # cameras one page may watch at once
SOURCES = ("camera", "screen")
SCREEN_BITRATE = 1_500_000  # a screen share: one layer, few pictures a second, sharp
MAX_PAGE = 10_000  # a presentation's pages
BOARD_SAVE_S = 2.0
POINTER_GAP_S = 0.09  # a page points at most ~10 times a second
CALL_SHOWN_S = 20.0  # an unanswered call stays in the list this long, saying why
JOINING_MAX_S = 30.0  # an answered call that never reached the room leaves the list after this


def ticket_key(ticket: str) -> str:
    """Whose limits, bars and private messages: a ticket's digest (a reconnection keeps them)."""
    return hashlib.sha256(ticket.encode()).hexdigest()[:32]


class PhoneCalls(Protocol):
    """What the host's page may do to a phone caller (the call flow, in `passerelle serve`)."""

    def mute_by_host(self, leg_id: str) -> bool: ...

    def take_out(self, leg_id: str, room: Hashable) -> bool: ...


class Live:
    def __init__(
        self, settings: Settings, rooms: Rooms, engine: Engine, key: bytes, lobby: Lobby | None = None
    ) -> None:
        self.settings, self.rooms, self.engine, self.key, self.lobby = settings, rooms, engine, key, lobby
        self._ids = itertools.count(1)
        self.hubs = Hubs(engine, lobby, rooms.now)
        self.chat_limit = RateLimit(*CHAT_LIMITS)
        self._mode: dict[str, LobbyMode] = {}  # room → its lobby mode, as last seen
        # (room, ticket key) → until when it may not come in, and why ("denied" at the lobby, "taken-out")
        self._barred: dict[tuple[str, str], tuple[float, str]] = {}
        webrtc = settings.webrtc
        self.opus = SharedOpus(webrtc.opus_bitrate, webrtc.opus_complexity, webrtc.opus_application.value)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_room_end: Callable[[str], None] | None = None  # `passerelle serve`: the call flow's end_room
        self.phones: PhoneCalls | None = None  # `passerelle serve`: the call flow
        self.invitations: Invitations | None = None  # the site's: an invitation from the room goes through the outbox
        self.files: RoomFiles | None = None  # the rooms' files over HTTP (web/room_files.py)
        self.janus: JanusRooms | None = None  # `passerelle serve`: the conferences' rooms in Janus (cameras)
        self.feeds: dict[str, tuple[Hub, Feed]] = {}  # leg → its room's hub and its place in Janus
        self.invite_limit = RateLimit(*INVITE_LIMITS)
        # `passerelle serve`: the dial-out (trunk or Asterisk) — (conference id, number) → the callee's leg id
        self.dialler: Callable[[str, str], Awaitable[str]] | None = None
        self.call_limit = RateLimit(*CALL_LIMITS)
        self._call_ids = itertools.count(1)
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
        hub = self.hubs.find(room)
        for member in list(hub.members.values()) if hub is not None else []:
            if change.kind is ChangeKind.INVITEE_REMOVED and member.invitee_id != change.invitee_id:
                continue
            self._tell_and_close(member, change.kind.value)
        if change.kind is not ChangeKind.INVITEE_REMOVED:
            self.hubs.end(room)
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
            watched = {hub.room for hub in self.hubs}
            live = {str(r).removeprefix("lobby:") for r in self.engine.rooms()} - watched
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

    async def restarting(self) -> None:
        """The service stops: every browser is told (its page reconnects by itself once it is back)."""
        members = [member for hub in self.hubs for member in hub.members.values()]
        for member in members:
            self._tell_and_close(member, "restarting", kind="restarting")
        await asyncio.gather(*(member.drain() for member in members), return_exceptions=True)

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _tell_and_close(member: Member, reason: str, kind: str = "ended") -> None:
        member.send({"type": kind, "reason": reason})
        member.close()

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

    async def _watch(self, member: Member, ticket: tickets.Ticket) -> None:
        """Every few seconds: a deletion or removal made elsewhere (the command line, another node) ends it too."""
        while not member.socket.closed:
            await asyncio.sleep(WATCH_S)
            reason = await self._refusal(ticket, passed=True)  # those in may run over the window
            if reason is not None:
                kind = ChangeKind(reason)
                self.apply(RoomChange(ticket.conference_id, kind, ticket.invitee_id))
                return

    def locked(self, room: Hashable) -> bool:
        """Has a host locked this room (nobody new comes in, by phone either)?"""
        hub = self.hubs.find(str(room))
        return hub is not None and hub.locked

    async def ring(self, hub: Hub, call_id: str, number: str) -> None:
        """Dial ``number`` into the hub's room; its entry in the hub's calls says how it goes."""
        call, dial = hub.calls[call_id], self.dialler
        try:
            if dial is None:
                raise PasserelleError("this service does not call phones")
            call["leg"] = await dial(hub.room, number)
        except PasserelleError as exc:  # DialOutError (busy, no answer…), or the conference no longer joinable
            call["state"] = getattr(exc, "outcome", "failed")
        except Exception:
            log.exception("a call from the room of %s could not be placed", hub.room)
            call["state"] = "failed"
        else:
            call["state"] = "joining"  # "you are joining the conference", then in the list
        hub.calls_changed()
        await asyncio.sleep(CALL_SHOWN_S if call["state"] != "joining" else JOINING_MAX_S)
        if hub.calls.pop(call_id, None) is not None:
            hub.calls_changed()

    async def board_of(self, hub: Hub) -> None:
        """The room's board as it was saved, read once when its hub is made (pages wait for it)."""
        if hub.board_loaded is None:
            hub.board_loaded = asyncio.get_running_loop().create_future()
            try:
                saved = await asyncio.to_thread(self.rooms.boards.load, uuid.UUID(hub.room))
                if saved is not None and hub.board.seq == 0:
                    hub.board = Board.restored(saved)
            finally:
                hub.board_loaded.set_result(None)
        await hub.board_loaded

    def board_changed(self, hub: Hub) -> None:
        """Saved within BOARD_SAVE_S of a change (once for a burst of strokes)."""
        if hub.board_saving is None:
            hub.board_saving = asyncio.get_running_loop().call_later(BOARD_SAVE_S, self._save_board, hub)

    def _save_board(self, hub: Hub) -> None:
        hub.board_saving = None
        self._spawn(asyncio.to_thread(self.rooms.boards.save, uuid.UUID(hub.room), hub.board.snapshot()))

    def janus_event(self, key: str, message: dict[str, Any]) -> None:
        """What Janus says of a page's handle: its camera (or screen) is up (now the others may watch it), or hung
        up; a new offer for what it watches (a feed it showed has gone)."""
        entry = self.feeds.get(key)
        if entry is None:
            return
        hub, feed = entry
        sender = message.get("sender")
        listed = hub.screens if feed.source == "screen" else hub.feeds
        if sender == feed.publisher and message.get("janus") == "webrtcup" and feed.published:
            listed[feed.leg_id] = feed.feed_id
            hub.feeds_changed()
        elif sender == feed.publisher and message.get("janus") == "hangup":
            hub.drop_feed(feed.leg_id, feed.source)
        elif sender == feed.subscriber and message.get("janus") == "slowlink" and message.get("uplink") is False:
            member = hub.members.get(feed.leg_id)  # what Janus sends this page is being lost: smaller layers
            if member is not None:
                member.send({"type": "video-slow"})
        elif sender == feed.subscriber and message.get("jsep", {}).get("type") == "offer":
            mids = JanusRooms.streams(feed, message.get("plugindata", {}).get("data", {}))
            member = hub.members.get(feed.leg_id)
            if member is not None:
                member.send(hub.video_offer(message["jsep"], mids))

    def janus_restarted(self) -> None:
        """Janus was restarted, its feeds gone with it: every page publishes and watches again."""
        for hub in self.hubs:
            hub.feeds.clear()
            hub.screens.clear()
            hub.sharing.clear()
            hub.to_all({"type": "video-restart"})

    def host_in(self, room: Hashable) -> bool:
        """Is a host of this conference in its room (for the lobby's until-host mode)?"""
        hub = self.hubs.find(str(room))
        return hub is not None and bool(hub.hosts)

    def bar(self, room: str, key: str, for_s: float, reason: str) -> None:
        self._barred[(room, key)] = (time.monotonic() + for_s, reason)

    def barred(self, room: str, key: str) -> str | None:
        """Why this ticket may not come into this room now, or None."""
        now = time.monotonic()
        for entry in [entry for entry, (until, _) in self._barred.items() if until <= now]:
            del self._barred[entry]
        bar = self._barred.get((room, key))
        return None if bar is None else bar[1]

    def phone_hand(self, leg_id: str, room: str) -> bool:
        """A caller's *9: its hand goes up, or down if it was up. Returns whether it is up now."""
        hub = self.hubs.get(room)
        raised = leg_id not in hub.hands
        if raised:
            hub.hands[leg_id] = time.monotonic()
        else:
            hub.hands.pop(leg_id, None)
        hub.changed()
        self.hubs.release(hub)  # a phone-only room keeps no hub: its next page starts with no hands up
        return raised

    def configuration(self) -> Any:
        from aiortc import RTCConfiguration, RTCIceServer

        webrtc = self.settings.webrtc
        servers = [
            RTCIceServer(urls=url, username=webrtc.turn_username or None,
                         credential=webrtc.turn_password.reveal() or None) if url.startswith("turn")
            else RTCIceServer(urls=url)
            for url in webrtc.ice_servers
        ]  # fmt: skip
        return RTCConfiguration(iceServers=servers)

    def must_wait(self, mode: LobbyMode, room: str, host: bool) -> bool:
        if host or self.lobby is None:
            return False
        return mode is LobbyMode.ALWAYS or (mode is LobbyMode.UNTIL_HOST and not self.host_in(room))

    def host_arrived(self, hub: Hub) -> None:
        """An until-host room: a host is in, so whoever waits for one goes in (browsers and callers)."""
        if self.lobby is None or self._mode.get(hub.room) is not LobbyMode.UNTIL_HOST:
            return
        for leg in self.lobby.in_room(hub.room):
            if leg.startswith("web-"):
                self.lobby.admit(leg)

    async def chat_text(self, request: web.Request) -> web.Response:
        """The meeting's chat as plain text, for the host to put into the patient's record: the messages to
        everyone and the hosts' private ones, times in the conference's zone."""
        text = request.match_info["ticket"]
        try:
            ticket = tickets.read(self.key, text)
        except tickets.BadTicket:
            raise web.HTTPForbidden(text="this room link is not valid any more") from None
        if not ticket.host:
            raise web.HTTPForbidden(text="only the conference's host may download its chat")
        try:
            conference = await asyncio.to_thread(self.rooms.get_conference, ticket.conference_id)
        except NotFoundError:
            raise web.HTTPGone(text="this conference was cancelled") from None
        hub = self.hubs.find(str(conference.id))
        since = hub.since if hub is not None else datetime.min.replace(tzinfo=UTC)
        legs = frozenset(hub.host_legs) if hub is not None else frozenset[str]()
        history = await asyncio.to_thread(self.rooms.chat.history, conference.id, since, legs=legs, limit=100_000)
        zone = ZoneInfo(conference.timezone)
        lines = [conference.name, ""]
        for message in history:
            at = message.sent_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            to = f" → {message.recipient}" if message.recipient is not None else ""
            lines.append(f"[{at}] {message.sender}{to}: {message.text}")
        day = self.rooms.now().astimezone(zone).strftime("%Y%m%d")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="chat-{day}.txt"', "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})  # fmt: skip

    async def room_socket(self, request: web.Request) -> web.StreamResponse:
        self._loop = asyncio.get_running_loop()
        text = request.match_info["ticket"]
        try:
            ticket = tickets.read(self.key, text)
        except tickets.BadTicket:
            raise web.HTTPForbidden(text="this room link is not valid any more: open your invitation again") from None
        # A dead tab is noticed in ≤ 4 s; a frame over MAX_FRAME is refused (the socket stays up), one so large
        # that only a hostile page sends it closes the socket.
        socket = web.WebSocketResponse(heartbeat=2.0, max_msg_size=4 * protocol.MAX_FRAME)
        await socket.prepare(request)
        refused = await self._refusal(ticket, passed=True)  # the window is judged with the offer (and its pass)
        key = ticket_key(text)
        if refused is None:
            refused = self.barred(str(ticket.conference_id), key)
        if refused is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send_json({"type": "ended", "reason": refused})
            await socket.close()
            return socket
        conference = await asyncio.to_thread(self.rooms.get_conference, ticket.conference_id)
        session = Session(self, socket, ticket, text, key, conference)
        await session.run()
        return socket


class Session:
    """One browser's socket: its leg, its place in the room's hub, and a handler per message type."""

    def __init__(self, live: Live, socket: web.WebSocketResponse, ticket: tickets.Ticket, text: str, key: str,
                 conference: ConferenceView) -> None:  # fmt: skip
        from aiortc import RTCPeerConnection

        self.live, self.socket, self.ticket, self.text, self.conference = live, socket, ticket, text, conference
        self.room = str(conference.id)
        self.leg_id = f"web-{next(live._ids)}"
        self.pc = RTCPeerConnection(live.configuration())
        self.leg = WebRtcLeg(self.leg_id, self.pc, shared=live.opus)
        self.hub = live.hubs.get(self.room)
        name = self.hub.names.get(key, ticket.name)  # as the page renamed itself before it reconnected
        self.member = Member(self.leg_id, ticket.host, name, socket, key, ticket.invitee_id)
        self.admission: asyncio.Task[None] | None = None
        self.feeds: dict[str, Feed] = {}  # its places in Janus ("camera", also watching; "screen"), once used
        self._pointed = 0.0  # when it last pointed on a shared screen
        self._point_next: dict[str, Any] | None = None  # a position that came too soon after the last, to send
        self._pointing: asyncio.TimerHandle | None = None
        live._mode[self.room] = conference.lobby_mode

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "audio":  # cameras and screens go to Janus, on connections of their own
                self.leg.receive_from(track)

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                log.info("leg %s: connection %s", self.leg_id, self.pc.connectionState)
                self.leg.close()

    @property
    def engine(self) -> Engine:
        return self.live.engine

    async def run(self) -> None:
        self.hub.add(self.member)
        self.member.send({"type": "welcome", "you": self.leg_id, "host": self.ticket.host,
                          "video": self.live.janus is not None})  # fmt: skip
        watch = asyncio.get_running_loop().create_task(self.live._watch(self.member, self.ticket))
        try:
            async for message in self.socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                try:
                    await self.handle(message.data)
                except Refused as refused:
                    self.member.send({"type": "error", "about": refused.about, "message": refused.message})
                if self.socket.closed:
                    break
        finally:
            watch.cancel()
            self.leave()

    async def handle(self, raw: str) -> None:
        if len(raw) > protocol.MAX_FRAME:
            raise Refused("", f"a message is at most {protocol.MAX_FRAME // 1024} kB")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # deep nesting too: the sender's error
            raise Refused("", "expected a JSON object with a type") from None
        kind, spec, fields = protocol.read(data)
        if spec.who is Who.HOST and not (self.ticket.host and self.member.admitted):
            log.info("leg %s: %r refused (not a host)", self.leg_id, kind)
            raise Refused(kind, "only the conference's host may do this")
        if spec.who is Who.IN and not self.member.admitted:
            raise Refused(kind, "not in the room yet")
        handler: Callable[[dict[str, Any]], Any] = getattr(self, "on_" + kind.replace("-", "_"))
        await handler(fields)

    def leave(self) -> None:
        if self._pointing is not None:
            self._pointing.cancel()
        if self.hub.presentation is not None and self.hub.presentation["by"] == self.leg_id:
            self.hub.presentation = None  # its presenter left: the others go back to the cameras
            self.hub.to_all(self.hub.presentation_message)
        self.hub.remove(self.leg_id)
        if self.admission is not None:
            self.admission.cancel()
        for feed in self.feeds.values():
            self.hub.drop_feed(self.leg_id, feed.source)
            self.live.feeds.pop(feed.key, None)
            if self.live.janus is not None:
                self.live._spawn(self.live.janus.leave(feed))
        if self.live.lobby is not None:
            self.live.lobby.forget(self.leg_id)
        self.leg.close()
        if self.leg_id in self.engine:
            self.engine.leave(self.leg_id)
        self.live.hubs.release(self.hub)  # out of the engine first: an empty room unlocks
        log.info("leg %s (web) left conference %s", self.leg_id, self.room)

    # -- signalling ----------------------------------------------------------------------------------------------

    async def on_offer(self, fields: dict[str, Any]) -> None:
        from aiortc import RTCSessionDescription

        if self.pc.remoteDescription is not None:
            raise Refused("offer", "an offer was already taken on this socket")
        live, room = self.live, self.room
        passed = tickets.has_pass(live.key, self.text, fields.get("pass"))
        outside = None if passed else live._outside_window(self.conference)
        if outside is None and not passed and not self.ticket.host and live.locked(room):
            log.info("leg %s: conference %s is locked; not let in", self.leg_id, room)
            outside = "locked"
        if outside is not None:
            live._tell_and_close(self.member, outside)
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=fields["sdp"], type="offer"))
        except ValueError as exc:  # an SDP aiortc cannot use
            log.info("leg %s: bad offer (%s)", self.leg_id, exc)
            raise Refused("offer", "the browser's offer could not be used") from None
        self.pc.addTrack(self.leg.track)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.member.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
        waits = not passed and live.must_wait(self.conference.lobby_mode, room, self.ticket.host)
        self.engine.join(f"lobby:{room}" if waits else room, self.leg, listen_only=waits)
        # As the page was before it reconnected; a listener's leg stays muted whatever its page says.
        self.engine.set_muted(self.leg_id, fields.get("muted") is True or self.ticket.media == "listen")
        self.engine.set_label(self.leg_id, self.member.name)
        log.info("leg %s (web) %s conference %s", self.leg_id, "waits to enter" if waits else "joined", room)
        if waits and live.lobby is not None:
            self.admission = asyncio.get_running_loop().create_task(self._wait_for_host(live.lobby))
        else:
            self._enter()

    def _enter(self) -> None:
        self.member.send({"type": "pass", "pass": tickets.room_pass(self.live.key, self.text)})
        self.hub.admitted(self.member)
        self.member.send(self.hub.settings)
        if self.hub.feeds:
            self.member.send(self.hub.feeds_message)
        if self.hub.calls:
            self.member.send(self.hub.calls_message)
        if self.hub.presentation is not None:
            self.member.send(self.hub.presentation_message)
        self.live._spawn(self._board())
        self.live._spawn(self._history())
        if self.live.files is not None:
            self.live._spawn(self._files(self.live.files))
        if self.ticket.host:
            self.hub.lobby_changed()
            self.live.host_arrived(self.hub)

    async def _board(self) -> None:
        await self.live.board_of(self.hub)
        self.member.send({"type": "board", **self.hub.board.snapshot()})

    async def _files(self, files: RoomFiles) -> None:
        self.member.send(await files.listing(self.room))

    async def _history(self) -> None:
        """The meeting's chat so far: to everyone, and this ticket's own private messages."""
        legs = frozenset(self.hub.legs_of.get(self.member.key, ()))
        chat = self.live.rooms.chat
        history = await asyncio.to_thread(chat.history, self.conference.id, self.hub.since, legs=legs)
        self.member.send({"type": "chat-history", "list": [view.as_message() for view in history]})

    async def _wait_for_host(self, lobby: Lobby) -> None:
        """A browser in the lobby: hears nothing, is not heard, until a host admits it (or one comes, in until-host
        mode: hosts see it in their panel either way)."""
        decision = lobby.wait(self.leg_id, self.room)
        self.member.send({"type": "waiting"})
        if self.live.host_in(self.room) and self.live._mode.get(self.room) is LobbyMode.UNTIL_HOST:
            lobby.admit(self.leg_id)
        await decision
        if decision.result() and self.leg_id in self.engine:
            self.engine.move(self.leg_id, self.room)
            self.member.send({"type": "admitted"})
            self._enter()
        else:
            self.live.bar(self.room, self.member.key, DENIED_S, "denied")
            self.member.send({"type": "denied"})
            self.member.close()

    async def on_candidate(self, fields: dict[str, Any]) -> None:
        from aiortc.sdp import candidate_from_sdp

        if not fields["candidate"]:
            return  # the end of the candidates
        try:
            candidate = candidate_from_sdp(fields["candidate"].removeprefix("candidate:"))
            candidate.sdpMid = fields.get("sdpMid")
            candidate.sdpMLineIndex = fields.get("sdpMLineIndex")
            await self.pc.addIceCandidate(candidate)
        # A garbage candidate: said, not fatal (aiortc's parser checks with assert).
        except (ValueError, IndexError, TypeError, KeyError, AssertionError):
            raise Refused("candidate", "this ICE candidate could not be read") from None

    # -- video through Janus ---------------------------------------------------------------------------------------

    def _janus(self, about: str, source: str = "camera") -> tuple[JanusRooms, Feed]:
        """Janus and this page's feed there: its camera's (which also watches the others) or its screen's."""
        janus = self.live.janus
        if janus is None:
            raise Refused(about, "video is not available on this service")
        if source not in SOURCES:
            raise Refused(about, "source: camera or screen")
        feed = self.feeds.get(source)
        if feed is None or not janus.current(feed):
            feed = self.feeds[source] = janus.feed(self.room, self.leg_id, source)
            self.live.feeds[feed.key] = (self.hub, feed)
        return janus, feed

    async def on_video_publish(self, fields: dict[str, Any]) -> None:
        source = fields.get("source", "camera")
        janus, feed = self._janus("video-publish", source)
        if source == "screen":
            others = self.hub.sharing - {self.leg_id}
            if others and not self.hub.many_screens:
                raise Refused("video-publish", "someone is already sharing their screen: one at a time")
            self.hub.sharing.add(self.leg_id)
        try:
            answer = await janus.publish(feed, {"type": "offer", "sdp": fields["sdp"]},
                                         bitrate=SCREEN_BITRATE if source == "screen" else None)  # fmt: skip
        except (JanusError, JanusGone) as exc:
            log.info("leg %s: %s not published (%s)", self.leg_id, source, exc)
            if source == "screen":
                self.hub.sharing.discard(self.leg_id)
            raise Refused("video-publish", "the video could not be sent now: try again in a moment") from None
        # listed once Janus has it up (its "webrtcup"): Live.janus_event
        self.member.send({"type": "video-answer", "sdp": answer["sdp"], "source": source})

    async def on_video_unpublish(self, fields: dict[str, Any]) -> None:
        source = fields.get("source", "camera")
        janus, feed = self._janus("video-unpublish", source)
        await self._unpublish(janus, feed)

    async def _unpublish(self, janus: JanusRooms, feed: Feed) -> None:
        self.hub.drop_feed(self.leg_id, feed.source)
        if feed.source == "screen":  # its own handle: it goes, and a next share starts afresh
            self.feeds.pop("screen", None)
            self.live.feeds.pop(feed.key, None)
            await janus.leave(feed)
        else:
            await janus.unpublish(feed)

    async def on_video_watch(self, fields: dict[str, Any]) -> None:
        janus, feed = self._janus("video-watch")
        legs, screens = fields["legs"], fields.get("screens", [])
        if len(legs) + len(screens) > WATCH_MAX or not all(isinstance(leg, str) for leg in legs + screens):
            raise Refused("video-watch", f"legs and screens: at most {WATCH_MAX} leg ids in all")
        wanted = {self.hub.feeds[leg] for leg in legs if leg in self.hub.feeds and leg != self.leg_id}
        wanted |= {self.hub.screens[leg] for leg in screens if leg in self.hub.screens and leg != self.leg_id}
        try:
            offer, mids = await janus.watch(feed, wanted)
        except (JanusError, JanusGone) as exc:
            log.info("leg %s: videos not received (%s)", self.leg_id, exc)
            raise Refused("video-watch", "the videos could not be received now: try again in a moment") from None
        if offer is not None:
            self.member.send(self.hub.video_offer(offer, mids))

    async def on_video_start(self, fields: dict[str, Any]) -> None:
        janus, feed = self._janus("video-start")
        try:
            await janus.start(feed, {"type": "answer", "sdp": fields["sdp"]})
        except (JanusError, JanusGone) as exc:
            log.info("leg %s: videos not started (%s)", self.leg_id, exc)
            raise Refused("video-start", "the videos could not be received now: try again in a moment") from None

    async def on_video_layers(self, fields: dict[str, Any]) -> None:
        """Which simulcast layer each tile needs (its size), or none for a tile off screen or a hidden tab."""
        janus, feed = self._janus("video-layers")
        layers = fields["mids"]
        if not isinstance(layers, dict) or len(layers) > 2 * WATCH_MAX:
            raise Refused("video-layers", f"mids: at most {2 * WATCH_MAX} m-lines")
        if not all(isinstance(mid, str) and len(mid) <= 8 and (layer is None or layer in (0, 1, 2))
                   and not isinstance(layer, bool) for mid, layer in layers.items()):  # fmt: skip
            raise Refused("video-layers", "mids: each a mid → 0, 1, 2 (the layer) or null (paused)")
        try:
            await janus.configure(feed, layers)
        except (JanusError, JanusGone) as exc:
            log.info("leg %s: layers not changed (%s)", self.leg_id, exc)
            raise Refused("video-layers", "the videos could not be changed now: try again in a moment") from None

    async def on_video_candidate(self, fields: dict[str, Any]) -> None:
        to = fields["to"]
        if to not in ("publisher", "subscriber", "screen"):
            raise Refused("video-candidate", "to: publisher, subscriber or screen")
        janus, feed = self._janus("video-candidate", "screen" if to == "screen" else "camera")
        candidate = None if not fields["candidate"] else {
            "candidate": fields["candidate"], "sdpMid": fields.get("sdpMid"),
            "sdpMLineIndex": fields.get("sdpMLineIndex")}  # fmt: skip
        with contextlib.suppress(JanusError, JanusGone):  # a candidate for a connection Janus no longer has
            await janus.trickle(feed, "subscriber" if to == "subscriber" else "publisher", candidate)

    async def on_pointer(self, fields: dict[str, Any]) -> None:
        """A pointer on a shared screen (or null: taken away), to everyone else in the room; at most 10 a second
        from one page (more are dropped: the next one says where it is)."""
        screen, x, y = fields["screen"], fields.get("x"), fields.get("y")
        if screen not in self.hub.screens:
            raise Refused("pointer", "nobody shares that screen")
        if (x is None) != (y is None) or (x is not None and y is not None and not (0 <= x <= 1 and 0 <= y <= 1)):
            raise Refused("pointer", "x and y: both from 0 to 1 (the shared picture's width and height), or null")
        message = {"type": "pointer", "leg": self.leg_id, "name": self.member.name, "screen": screen,
                   "x": None if x is None else round(x, 4), "y": None if y is None else round(y, 4)}  # fmt: skip
        wait = POINTER_GAP_S - (time.monotonic() - self._pointed)
        if wait > 0 and x is not None:  # too soon: the latest goes when the gap is over (where it came to rest)
            if self._pointing is None:
                self._pointing = asyncio.get_running_loop().call_later(wait, self._point)
            self._point_next = message
            return
        self._point_next = message
        self._point()

    def _point(self) -> None:
        self._pointing = None
        message, self._point_next = self._point_next, None
        if message is not None:
            self._pointed = time.monotonic()
            self.hub.to(set(self.hub.members) - {self.leg_id}, message)

    # -- oneself -------------------------------------------------------------------------------------------------

    async def on_mute(self, fields: dict[str, Any]) -> None:
        if self.leg_id in self.engine and self.ticket.media != "listen":
            self.engine.set_muted(self.leg_id, fields["muted"])

    async def on_hand(self, fields: dict[str, Any]) -> None:
        if fields["raised"]:
            self.hub.hands.setdefault(self.leg_id, time.monotonic())
        else:
            self.hub.hands.pop(self.leg_id, None)
        self.hub.changed()

    async def on_name(self, fields: dict[str, Any]) -> None:
        name = " ".join(fields["name"].split())
        if not name:
            raise Refused("name", "name: empty")
        self.member.name = self.hub.names[self.member.key] = name
        self.engine.set_label(self.leg_id, name)
        self.member.send({"type": "renamed", "name": name})

    async def on_chat(self, fields: dict[str, Any]) -> None:
        text: str = fields["text"].strip()
        if not text:
            raise Refused("chat", "text: empty")
        to: tuple[str, str] | None = None
        if fields.get("to"):
            recipient = self.hub.members.get(fields["to"])
            if recipient is None or not recipient.admitted or recipient is self.member:
                raise Refused("chat", "a private message goes to someone in the room on the web")
            if not self.hub.private_chat and not self.ticket.host:
                raise Refused("chat", "the host has turned private messages off")
            to = (recipient.name, recipient.leg_id)
        if not self.live.chat_limit.allow(self.member.key):
            raise Refused("chat", "too many messages: wait a moment before sending another")
        chat = self.live.rooms.chat
        view = await asyncio.to_thread(chat.send, self.conference.id, self.member.name, self.leg_id, text, to)
        message = {"type": "chat", "message": view.as_message()}
        if to is None:
            self.hub.to_all(message)
        else:
            self.hub.to({self.leg_id, to[1]}, message)

    async def on_invite(self, fields: dict[str, Any]) -> None:
        invitations = self.live.invitations
        if invitations is None:
            raise Refused("invite", "invitations are not sent from this service")
        if not self.ticket.host and not self.hub.guests_invite:
            raise Refused("invite", "only the host may invite: ask them to allow it")
        address = fields["address"].strip()
        kind = "email" if "@" in address else "phone"
        if not self.live.invite_limit.allow(self.member.key):
            raise Refused("invite", "too many invitations: try again in an hour")
        rooms = self.live.rooms
        try:
            invitee = await asyncio.to_thread(rooms.add_invitee, self.conference.id, kind, address, send_now=False)
        except ValidationError as exc:
            raise Refused("invite", exc.message) from None
        except ConflictError:
            raise Refused("invite", "already invited to this conference") from None
        conference = await asyncio.to_thread(rooms.get_conference, self.conference.id)
        await asyncio.to_thread(invitations.send, conference, [invitee], note=(fields.get("message") or "").strip())
        log.info("leg %s invited someone to conference %s (%s)", self.leg_id, self.room, kind)
        self.member.send({"type": "invited", "id": str(invitee.id), "address": address, "state": "queued"})
        self.live._spawn(self._follow(invitee.id))

    async def _follow(self, invitee_id: uuid.UUID) -> None:
        """Tell who invited when the outbox has sent the invitation (or given up)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + FOLLOW_FOR_S
        while loop.time() < until and not self.socket.closed:
            await asyncio.sleep(FOLLOW_S)
            try:
                invitee = await asyncio.to_thread(self.live.rooms.get_invitee, invitee_id)
            except NotFoundError:
                return
            if invitee.delivery_state in (DeliveryState.SENT, DeliveryState.FAILED):
                self.member.send({"type": "invite-state", "id": str(invitee_id),
                                  "state": invitee.delivery_state.value})  # fmt: skip
                return

    # -- the host's ----------------------------------------------------------------------------------------------

    async def on_call(self, fields: dict[str, Any]) -> None:
        live, hub = self.live, self.hub
        if live.dialler is None:
            raise Refused("call", "this service does not call phones")
        settings = live.settings
        try:
            number = dialable_phone(fields["number"], settings.locale.phone_region, settings.trunk.allowed_countries)
        except ValidationError as exc:
            raise Refused("call", exc.message) from None
        ringing = [call for call in hub.calls.values() if call["state"] in ("ringing", "joining")]
        if len(ringing) >= RINGING_MAX:
            raise Refused("call", f"{RINGING_MAX} phones are being called already: wait for one to answer")
        if not live.call_limit.allow(self.member.key):
            raise Refused("call", "too many calls from this room: try again later")
        call_id = f"call-{next(live._call_ids)}"
        hub.calls[call_id] = {"id": call_id, "label": mask_phone(number), "state": "ringing"}
        hub.calls_changed()
        log.info("host %s calls a phone into conference %s (%s)", self.leg_id, self.room, call_id)
        live._spawn(live.ring(hub, call_id, number))

    async def on_chat_delete(self, fields: dict[str, Any]) -> None:
        if not await asyncio.to_thread(self.live.rooms.chat.delete, self.conference.id, fields["id"]):
            raise Refused("chat-delete", "no such message")
        self.hub.to_all({"type": "chat-deleted", "id": fields["id"]})

    async def on_chat_clear(self, fields: dict[str, Any]) -> None:
        await asyncio.to_thread(self.live.rooms.chat.clear, self.conference.id)
        self.hub.to_all({"type": "chat-cleared"})
        log.info("host %s cleared the chat of conference %s", self.leg_id, self.room)

    def _in_room(self, leg: str) -> None:
        if leg not in self.engine.legs_in(self.room):
            raise Refused("", "nobody with this id is in the room")

    async def on_admit(self, fields: dict[str, Any]) -> None:
        await self._decide("admit", fields["leg"])

    async def on_deny(self, fields: dict[str, Any]) -> None:
        await self._decide("deny", fields["leg"])

    async def _decide(self, kind: str, waiting: str) -> None:
        lobby = self.live.lobby
        if lobby is None or waiting not in lobby.in_room(self.room):  # only this conference's lobby
            raise Refused(kind, "nobody with this id is waiting")
        done = lobby.admit(waiting) if kind == "admit" else lobby.deny(waiting)
        log.info("host %s: %s %s (%s)", self.leg_id, kind, waiting, "done" if done else "too late")

    async def on_mute_other(self, fields: dict[str, Any]) -> None:
        leg = fields["leg"]
        self._in_room(leg)
        other = self.hub.members.get(leg)
        if other is not None:
            self.engine.set_muted(leg, True)
            other.send({"type": "muted-by-host"})
        elif self.live.phones is None or not self.live.phones.mute_by_host(leg):
            self.engine.set_muted(leg, True)
        log.info("host %s muted %s", self.leg_id, leg)

    async def on_lower_hand(self, fields: dict[str, Any]) -> None:
        self.hub.hands.pop(fields["leg"], None)
        self.hub.changed()

    async def on_remove(self, fields: dict[str, Any]) -> None:
        leg = fields["leg"]
        self._in_room(leg)
        if leg == self.leg_id:
            raise Refused("remove", "use Leave to leave the room")
        other = self.hub.members.get(leg)
        if other is not None:
            self.live.bar(self.room, other.key, TAKEN_OUT_S, "taken-out")
            self.live._tell_and_close(other, "taken-out")
        elif self.live.phones is None or not self.live.phones.take_out(leg, self.room):
            self.engine.leave(leg)
        log.info("host %s took %s out of conference %s", self.leg_id, leg, self.room)

    async def on_board(self, fields: dict[str, Any]) -> None:
        await self.live.board_of(self.hub)
        if self.hub.board_hosts_only and not self.ticket.host:
            raise Refused("board", "only the host draws on the board now")
        if not self.hub.board_rate.allow(self.member.key):
            raise Refused("board", "too many operations: at most 30 a second")
        page = fields.get("page")
        try:
            message = self.hub.board.apply(
                self.member.key, fields, host=self.ticket.host or self._owns(page), layer_open=self._layer_open
            )
        except BoardError as refused:
            raise Refused("board", str(refused)) from None
        self.hub.board_op(message)
        self.live.board_changed(self.hub)

    def _layer_open(self, name: str) -> bool:
        """May the board's layer ``name`` be drawn on now: a page of the PDF presented, or a paused screen."""
        if name.startswith("pdf:"):
            presented = self.hub.presentation
            return presented is not None and name.split(":")[1] == presented["file"]
        leg = name.removeprefix("screen:")
        return leg in self.hub.paused and leg in self.hub.screens

    def _owns(self, page: Any) -> bool:
        """Is ``page`` a layer over what this page shows (its presentation, its paused screen): it may clear it."""
        if not isinstance(page, str):
            return False
        presented = self.hub.presentation
        if page.startswith("pdf:"):
            return presented is not None and presented["by"] == self.leg_id
        return page == f"screen:{self.leg_id}"

    async def on_screen_pause(self, fields: dict[str, Any]) -> None:
        """The sharer holds its shared picture still to annotate it (its page sends that still picture), or lets
        it go on: what was drawn over it goes, since the picture under it does."""
        if self.leg_id not in self.hub.screens:
            raise Refused("screen-pause", "this page shares no screen")
        if fields["paused"]:
            self.hub.paused.add(self.leg_id)
        else:
            self.hub.paused.discard(self.leg_id)
            self.hub.drop_layer(f"screen:{self.leg_id}")
        self.hub.feeds_changed()

    async def on_present(self, fields: dict[str, Any]) -> None:
        current = self.hub.presentation
        if current is not None and current["by"] != self.leg_id and not self.ticket.host:
            raise Refused("present", "someone else is presenting")
        if fields["page"] < 1 or fields["page"] > MAX_PAGE:
            raise Refused("present", f"page: from 1 to {MAX_PAGE}")
        if current is None or current["file"] != fields["file"]:
            listed = await asyncio.to_thread(self.live.rooms.files.listed, self.conference.id)
            pdf = next((f for f in listed if str(f.id) == fields["file"] and f.media_type == "application/pdf"), None)
            if pdf is None:
                raise Refused("present", "file: a PDF of this room's files")
            self.hub.presentation = {"file": fields["file"], "name": pdf.name, "page": fields["page"],
                                     "by": self.leg_id, "by_name": self.member.name}  # fmt: skip
        else:
            self.hub.presentation = {**current, "page": fields["page"], "by": self.leg_id,
                                     "by_name": self.member.name}  # fmt: skip
        self.hub.to_all(self.hub.presentation_message)

    async def on_present_stop(self, fields: dict[str, Any]) -> None:
        current = self.hub.presentation
        if current is None:
            return
        if current["by"] != self.leg_id and not self.ticket.host:
            raise Refused("present-stop", "only its presenter or a host may stop the presentation")
        self.hub.presentation = None
        self.hub.to_all(self.hub.presentation_message)

    async def on_stop_share(self, fields: dict[str, Any]) -> None:
        leg = fields["leg"]
        entry = self.live.feeds.get(f"{leg}:screen")
        if entry is None or entry[0] is not self.hub:
            raise Refused("stop-share", "this participant does not share a screen")
        sharer = self.hub.members.get(leg)
        if sharer is not None:
            sharer.send({"type": "share-stopped"})
        self.hub.drop_feed(leg, "screen")
        self.live.feeds.pop(f"{leg}:screen", None)
        if self.live.janus is not None:
            await self.live.janus.leave(entry[1])
        log.info("host %s stopped the screen share of %s", self.leg_id, leg)

    async def on_settings(self, fields: dict[str, Any]) -> None:
        self.hub.private_chat = fields.get("private_chat", self.hub.private_chat)
        self.hub.guests_invite = fields.get("guests_invite", self.hub.guests_invite)
        self.hub.many_screens = fields.get("many_screens", self.hub.many_screens)
        self.hub.guests_upload = fields.get("guests_upload", self.hub.guests_upload)
        self.hub.board_hosts_only = fields.get("board_hosts_only", self.hub.board_hosts_only)
        if fields.get("locked", self.hub.locked) is not self.hub.locked:
            self.hub.locked = fields["locked"]
            log.info("host %s %s conference %s", self.leg_id, "locked" if self.hub.locked else "unlocked", self.room)
        self.hub.to_all(self.hub.settings)

    async def on_end(self, fields: dict[str, Any]) -> None:
        log.info("host %s ends conference %s for everyone", self.leg_id, self.room)
        await asyncio.to_thread(self.live.rooms.end_conference, self.room)
