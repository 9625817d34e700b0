"""One hub per conference's room: the browsers connected to it, and what is pushed to them when something changes.

Nothing polls: the engine tells the hub when who is in the room, muted or speaking may have changed, the lobby
when someone starts or stops waiting; the hub then sends the new participant list once to everyone (at most every
FLUSH_S, one JSON text for all), the lobby to its hosts. Each socket has its own outbox and writer: a page that
cannot keep up (OUTBOX_MAX messages behind) is closed, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from bridge.callflow import Lobby
from bridge.engine import Engine
from web.board import Board

log = logging.getLogger(__name__)
FLUSH_S = 0.1  # the participant list goes out at most 10 times a second
KEEP_S = 600.0  # a hub outlives its last page this long: a page back within it finds the meeting's chat
OUTBOX_MAX = 512
BOARD_BATCH_S = 0.03  # the board's operations go out at most this often, a batch in one frame per page
_closing: set[asyncio.Task[Any]] = set()


@dataclass(eq=False)
class Member:
    """A browser in the room (or in its lobby): its socket, its outbox and its writer."""

    leg_id: str
    host: bool
    name: str
    socket: web.WebSocketResponse
    key: str  # whose limits these are: its ticket (a reconnection keeps them)
    invitee_id: uuid.UUID | None = None
    admitted: bool = False  # in the room, not in the lobby
    outbox: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(OUTBOX_MAX))
    writer: asyncio.Task[None] | None = None

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            log.info("leg %s: its page does not keep up; closed", self.leg_id)
            self.close()

    def close(self) -> None:
        """After what is in its outbox (all of it, unless it is full: then at once)."""
        try:
            self.outbox.put_nowait(None)
        except asyncio.QueueFull:
            if self.writer is not None:
                self.writer.cancel()
            closing = asyncio.get_running_loop().create_task(self.socket.close())
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)

    async def write(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None or self.socket.closed:
                await self.socket.close()
                return
            try:
                await self.socket.send_str(text)
            except (ConnectionError, RuntimeError):  # gone meanwhile
                return

    async def drain(self) -> None:
        """Wait until what is queued is written (the writer ends after a close)."""
        if self.writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self.writer)


class RateLimit:
    """At most ``count`` events per ``window_s`` seconds for each key (a sliding window)."""

    def __init__(self, *rules: tuple[int, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.rules, self.clock = rules, clock
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        longest = max(window for _, window in self.rules)
        seen = self._seen.setdefault(key, deque())
        while seen and now - seen[0] >= longest:
            seen.popleft()
        for count, window in self.rules:
            if sum(1 for at in seen if now - at < window) >= count:
                return False
        seen.append(now)
        return True


class Hub:
    def __init__(self, room: str, engine: Engine, lobby: Lobby | None, since: datetime) -> None:
        self.room, self.engine, self.lobby = room, engine, lobby
        self.since = since  # when this meeting began: its chat is what a late joiner gets (not an earlier one's)
        self.members: dict[str, Member] = {}
        self.legs_of: dict[str, set[str]] = {}  # ticket → the legs it had in this meeting (private messages)
        self.host_legs: set[str] = set()  # the legs its hosts had in this meeting (the chat's download)
        self.names: dict[str, str] = {}  # ticket → the name its page chose during this meeting
        self.hands: dict[str, float] = {}  # leg → when its hand went up (phones too)
        self.private_chat = True  # may participants write to one another privately (a host's setting)
        self.guests_invite = False  # may guests invite someone from the room (a host's setting)
        self.locked = False  # nobody new comes in, on the web or by phone (a host's setting)
        self.feeds: dict[str, int] = {}  # leg → its camera's feed id in Janus, while it publishes
        self.screens: dict[str, int] = {}  # leg → its screen share's feed id in Janus, while it is up
        self.sharing: set[str] = set()  # the legs sharing a screen or about to (before Janus has it up)
        self.many_screens = False  # may several share their screen at once (a host's setting)
        self.guests_upload = False  # may guests share files (a host's setting; hosts always may)
        self.presentation: dict[str, Any] | None = None  # the PDF presented: file, name, page, by, by_name
        self.board = Board()  # the room's whiteboard (read from the database when the room opens: Live.board_of)
        self.board_loaded: asyncio.Future[None] | None = None
        self.board_saving: asyncio.TimerHandle | None = None
        self.board_hosts_only = False  # only hosts draw on it (a host's setting)
        self.board_rate = RateLimit((30, 1.0))  # operations per participant
        self.paused: set[str] = set()  # the legs whose screen share is paused (a still picture to annotate)
        self._board_ops: list[dict[str, Any]] = []
        self._board_timer: asyncio.TimerHandle | None = None
        self._board_sent = 0.0
        self.calls: dict[str, dict[str, str]] = {}  # the phones a host is calling in: id → {id, label, state, leg}
        self._flush: asyncio.TimerHandle | None = None
        self._last_list = ""

    # -- members -------------------------------------------------------------------------------------------------

    def add(self, member: Member) -> None:
        self.members[member.leg_id] = member
        self.legs_of.setdefault(member.key, set()).add(member.leg_id)
        if member.host:
            self.host_legs.add(member.leg_id)
        member.writer = asyncio.get_running_loop().create_task(member.write(), name=f"writer {member.leg_id}")

    def remove(self, leg_id: str) -> None:
        member = self.members.pop(leg_id, None)
        self.hands.pop(leg_id, None)
        if member is not None:
            member.close()

    def admitted(self, member: Member) -> None:
        """In the room now: it gets the list as it is, whoever else had it already."""
        member.admitted = True
        if self._last_list:
            member.send(self._last_list)
        self.changed()

    @property
    def hosts(self) -> list[Member]:
        return [m for m in self.members.values() if m.host and m.admitted]

    def __bool__(self) -> bool:
        return bool(self.members)

    # -- pushing -------------------------------------------------------------------------------------------------

    def changed(self) -> None:
        """Something in the participant list may have changed: it goes out within FLUSH_S."""
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        self._flush = None
        people = self.engine.participants(self.room)
        present = {p["id"] for p in people}
        for leg in [leg for leg in self.hands if leg not in present]:
            del self.hands[leg]  # left the room with its hand up
        for person in people:
            person["hand"] = person["id"] in self.hands
        joined = [key for key, call in self.calls.items() if call.get("leg") in present]
        for key in joined:  # an answered call is a participant now
            del self.calls[key]
        if joined:
            self.calls_changed()
        text = json.dumps({"type": "participants", "list": people,
                           "by_phone": sum(1 for p in people if p["kind"] == "sip")})  # fmt: skip
        if text == self._last_list:
            return
        self._last_list = text
        for member in self.members.values():
            if member.admitted:
                member.send(text)

    @property
    def calls_message(self) -> dict[str, Any]:
        shown = [{k: v for k, v in call.items() if k != "leg"} for call in self.calls.values()]
        return {"type": "calls", "list": shown}

    @property
    def feeds_message(self) -> dict[str, Any]:
        return {"type": "video-feeds", "list": sorted(self.feeds), "screens": sorted(self.screens),
                "paused": sorted(self.paused & set(self.screens))}  # fmt: skip

    def feeds_changed(self) -> None:
        self.to_all(self.feeds_message)

    def drop_feed(self, leg_id: str, source: str = "camera") -> None:
        """The leg's camera (or screen) is no longer in Janus: the others are told, if it was listed (and what
        was drawn over a paused screen goes with it)."""
        if source == "screen":
            self.sharing.discard(leg_id)
            self.paused.discard(leg_id)
            self.drop_layer(f"screen:{leg_id}")
        listed = self.screens if source == "screen" else self.feeds
        if listed.pop(leg_id, None) is not None:
            self.feeds_changed()

    def video_offer(self, offer: dict[str, Any], mids: dict[str, int]) -> dict[str, Any]:
        """Janus's offer for a page's subscriber connection, with whose video each m-line carries."""
        return {"type": "video-offer", "sdp": offer["sdp"],
                "mids": {mid: self.owner(feed_id) for mid, feed_id in mids.items()}}  # fmt: skip

    @property
    def presentation_message(self) -> dict[str, Any]:
        return {"type": "presentation", **(self.presentation or {"file": None})}

    def owner(self, feed_id: int) -> dict[str, str] | None:
        """Whose feed this is: {leg, source} ("camera" or "screen"), or None once it left."""
        for source, listed in (("camera", self.feeds), ("screen", self.screens)):
            for leg, listed_id in listed.items():
                if listed_id == feed_id:
                    return {"leg": leg, "source": source}
        return None

    def calls_changed(self) -> None:
        self.to_all(self.calls_message)

    def lobby_changed(self) -> None:
        if self.lobby is None:
            return
        waiting = [{"id": leg, "label": self.engine.labels.get(leg, "")} for leg in self.lobby.in_room(self.room)]
        text = json.dumps({"type": "lobby", "list": waiting})
        for member in self.members.values():
            if member.host:
                member.send(text)

    # -- the whiteboard --------------------------------------------------------------------------------------------

    def board_op(self, op: dict[str, Any]) -> None:
        """An operation the board applied, to everyone in the room. The first after a quiet spell goes at once;
        those that follow within BOARD_BATCH_S go together in one frame: five people drawing in a room of 30
        cost some 30 frames a second per page, not one per stroke's every move (each a write on the loop that
        runs the media clock)."""
        self._board_ops.append(op)
        if self._board_timer is None:
            loop = asyncio.get_running_loop()
            wait = self._board_sent + BOARD_BATCH_S - loop.time()
            if wait <= 0:
                self.flush_board()
            else:
                self._board_timer = loop.call_later(wait, self.flush_board)

    def flush_board(self) -> None:
        self._board_timer = None
        ops, self._board_ops = self._board_ops, []
        if ops:
            self._board_sent = asyncio.get_running_loop().time()
            self.to_all({"type": "board-ops", "ops": ops})

    def drop_layer(self, name: str) -> None:
        cleared = self.board.drop_layer(name)
        if cleared is not None:
            self.board_op(cleared)

    def to_all(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for member in self.members.values():
            if member.admitted:
                member.send(text)

    def to(self, leg_ids: set[str], message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for leg_id in leg_ids:
            member = self.members.get(leg_id)
            if member is not None and member.admitted:
                member.send(text)

    @property
    def settings(self) -> dict[str, Any]:
        return {"type": "settings", "private_chat": self.private_chat, "guests_invite": self.guests_invite,
                "locked": self.locked, "many_screens": self.many_screens,
                "guests_upload": self.guests_upload, "board_hosts_only": self.board_hosts_only}  # fmt: skip

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._board_timer is not None:
            self._board_timer.cancel()
            self._board_timer = None


class Hubs:
    """The hubs of the rooms with someone connected (or until KEEP_S after the last left); the engine's and the
    lobby's changes reach the right one."""

    def __init__(self, engine: Engine, lobby: Lobby | None, clock: Callable[[], datetime]) -> None:
        self.engine, self.lobby, self.clock = engine, lobby, clock
        self._hubs: dict[str, Hub] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        engine.presence_listeners.append(self._presence)
        if lobby is not None:
            lobby.listeners.append(self._lobby)

    def get(self, room: str) -> Hub:
        expiry = self._expiry.pop(room, None)
        if expiry is not None:
            expiry.cancel()
        hub = self._hubs.get(room)
        if hub is None:
            hub = self._hubs[room] = Hub(room, self.engine, self.lobby, self.clock())
        return hub

    def find(self, room: str) -> Hub | None:
        return self._hubs.get(room)

    def release(self, hub: Hub) -> None:
        """Its last page left: the hub goes KEEP_S later unless a page comes back (a locked room's stays while
        callers are in it: the lock with it)."""
        if not hub and not self.engine.legs_in(hub.room):
            hub.locked = False  # nobody is in the room any more: the next to come finds it open
        if not hub and self._hubs.get(hub.room) is hub and hub.room not in self._expiry:
            self._expiry[hub.room] = asyncio.get_running_loop().call_later(KEEP_S, self._drop, hub)

    def end(self, room: str) -> None:
        """The meeting is over (ended, deleted): the next page starts a new one."""
        hub = self._hubs.get(room)
        if hub is not None:
            hub.since = self.clock()
            hub.legs_of.clear()
            hub.host_legs.clear()
            hub.names.clear()
            hub.hands.clear()
            hub.locked = False

    def _drop(self, hub: Hub) -> None:
        self._expiry.pop(hub.room, None)
        if hub.locked and self.engine.legs_in(hub.room):
            self.release(hub)  # callers are in the locked room: looked at again later
            return
        if not hub and self._hubs.get(hub.room) is hub:
            hub.close()
            del self._hubs[hub.room]

    def __iter__(self) -> Any:
        return iter(list(self._hubs.values()))

    def _presence(self, room: Hashable) -> None:
        hub = self._hubs.get(str(room))
        if hub is not None:
            hub.changed()

    def _lobby(self, room: Hashable) -> None:
        hub = self._hubs.get(str(room))
        if hub is not None:
            hub.lobby_changed()
