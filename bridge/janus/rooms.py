"""Each conference's room in Janus's VideoRoom, and the feeds of the pages in it.

A room is made the first time a page of the conference publishes or watches, with a random id, secret and PIN that
never leave this process (a page cannot reach Janus's API, and could not guess them if it did); after a Janus
restart ``ready`` makes every known room again, and the pages publish and subscribe again by themselves.

A page publishes on a handle of its own ("publisher"), and watches the others on a second handle ("subscriber",
one PeerConnection for every feed it shows: Janus's multistream). Passerelle relays the SDPs between the page and
Janus; the media goes straight between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.janus.client import JanusClient, JanusError, JanusGone

log = logging.getLogger(__name__)
VIDEOROOM = "janus.plugin.videoroom"
HANGUP_WAIT_S = 2.0  # at most this long a camera on again waits for Janus to hang its previous connection up
PLI_GAP_S = 1.1  # Janus sends a publisher at most one keyframe request a second


@dataclass
class Room:
    id: int
    secret: str
    pin: str
    publishers: int


@dataclass
class Feed:
    """A page's place in Janus: its publisher handle (and feed id once it publishes), its subscriber handle."""

    conference: str
    leg_id: str
    source: str = "camera"  # or "screen": a screen share is a second feed of the page, on a handle of its own
    feed_id: int = field(default_factory=lambda: secrets.randbelow(2**52) + 1)
    publisher: int | None = None
    subscriber: int | None = None
    published: bool = False
    watching: set[int] = field(default_factory=set)  # the feeds its subscriber handle receives
    generation: int = 0  # which Janus its handles are in (JanusRooms.generation when it was made)
    mids: dict[str, int] = field(default_factory=dict)  # the subscriber's m-lines now: mid → the feed it carries
    layers: dict[str, int | None] = field(default_factory=dict)  # what each m-line was last asked to receive

    @property
    def key(self) -> str:
        """Who this feed is in Janus (its "display") and in Passerelle: the leg, or the leg's screen."""
        return self.leg_id if self.source == "camera" else f"{self.leg_id}:{self.source}"


class JanusRooms:
    """The conferences' rooms in one Janus; ``on_event(leg_id, message)`` gets what Janus says of a page's handle."""

    def __init__(self, on_event: Callable[[str, dict[str, Any]], None] | None = None, *,
                 publishers: int = 100, bitrate: int = 2_200_000) -> None:  # fmt: skip
        self.on_event = on_event
        self.publishers, self.bitrate = publishers, bitrate
        self.client: JanusClient | None = None
        self._admin: int | None = None  # a handle for creating and destroying rooms
        self._rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()
        self.generation = 0  # one more at every Janus (re)start: the feeds of an earlier one are gone
        self.restarted: Callable[[], None] | None = None  # after a restart (not the first start)
        self._tasks: set[asyncio.Task[None]] = set()
        self._hangups: dict[int, asyncio.Event] = {}  # publisher handle → set once Janus hung up its unpublished

    def feed(self, conference: str, leg_id: str, source: str = "camera") -> Feed:
        return Feed(conference, leg_id, source, generation=self.generation)

    def current(self, feed: Feed) -> bool:
        """Are the feed's handles in the Janus running now?"""
        return feed.generation == self.generation

    async def ready(self, client: JanusClient) -> None:
        """A (new) Janus is up: every room known is made again in it (the pages' handles went with the old one)."""
        async with self._lock:
            self.client, self._admin = client, await client.attach(VIDEOROOM)
            for room in self._rooms.values():
                await self._create(room)
            self.generation += 1
        log.info("Janus: %d rooms made", len(self._rooms))
        if self.generation > 1 and self.restarted is not None:
            self.restarted()

    def _connected(self) -> JanusClient:
        if self.client is None or self.client.closed.is_set():
            raise JanusGone("Janus is not running now")
        return self.client

    async def _create(self, room: Room) -> None:
        assert self._admin is not None  # noqa: S101 - set with the client, under the lock
        await self._connected().message(self._admin, {
            "request": "create", "room": room.id, "secret": room.secret, "pin": room.pin, "is_private": True,
            "publishers": room.publishers, "bitrate": self.bitrate, "fir_freq": 10, "videocodec": "vp8,h264",
            "audiocodec": "opus", "notify_joining": False, "require_pvtid": False,
        })  # fmt: skip

    async def room(self, conference: str) -> Room:
        """The conference's room, made now if it has none."""
        async with self._lock:
            room = self._rooms.get(conference)
            if room is None:
                room = Room(secrets.randbelow(2**52) + 1, secrets.token_urlsafe(24), secrets.token_urlsafe(12),
                            self.publishers)  # fmt: skip
                self._connected()
                await self._create(room)
                self._rooms[conference] = room
            return room

    async def close_room(self, conference: str) -> None:
        """The meeting is over: its room goes (and every feed in it)."""
        async with self._lock:
            room = self._rooms.pop(conference, None)
            if room is None or self._admin is None or self.client is None:
                return
            try:
                await self.client.message(self._admin, {"request": "destroy", "room": room.id, "secret": room.secret})
            except (JanusError, JanusGone) as exc:
                log.info("Janus: a room could not be destroyed (%s)", exc)

    def _listener(self, key: str) -> Callable[[dict[str, Any]], None]:
        def heard(message: dict[str, Any]) -> None:
            if message.get("janus") == "hangup":
                unpublished = self._hangups.pop(int(message.get("sender") or 0), None)
                if unpublished is not None:
                    unpublished.set()
            if self.on_event is not None:
                self.on_event(key, message)

        return heard

    async def publish(self, feed: Feed, offer: dict[str, Any], *, bitrate: int | None = None) -> dict[str, Any]:
        """The page's offer (its camera or screen, no audio) into the room; returns Janus's answer. ``bitrate``
        caps what Janus lets the page send (its REMB), under the room's."""
        client, room = self._connected(), await self.room(feed.conference)
        if feed.publisher is None:
            feed.publisher = await client.attach(VIDEOROOM, self._listener(feed.key))
            await client.message(feed.publisher, {"request": "join", "ptype": "publisher", "room": room.id,
                                                  "pin": room.pin, "id": feed.feed_id, "display": feed.key},
                                 later=True)  # fmt: skip
        unpublished = self._hangups.get(feed.publisher)
        if unpublished is not None:  # a camera off and on again: its old connection must be gone first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(unpublished.wait(), HANGUP_WAIT_S)
            self._hangups.pop(feed.publisher, None)
        configure: dict[str, Any] = {"request": "configure", "audio": False, "video": True}
        if bitrate is not None:
            configure["bitrate"] = min(bitrate, self.bitrate)
        _, answer = await client.message(feed.publisher, configure, offer, later=True)
        if answer is None:
            raise JanusError(0, "Janus gave no answer to the offer")
        await self._if_complete(feed.publisher, offer)
        feed.published = True
        return answer

    async def _if_complete(self, handle: int, description: dict[str, Any]) -> None:
        """An SDP with all its candidates (``a=end-of-candidates``): Janus waits for no trickle."""
        if "a=end-of-candidates" in str(description.get("sdp", "")):
            await self._connected().trickle(handle, None)

    async def unpublish(self, feed: Feed) -> None:
        if feed.publisher is not None and feed.published and self.client is not None:
            feed.published = False
            # Janus hangs the connection up after it answers: a publish on the handle before that hangup is
            # torn down with it (the camera back on would reach no one), so the next publish waits for it.
            self._hangups[feed.publisher] = asyncio.Event()
            try:
                await self.client.message(feed.publisher, {"request": "unpublish"}, later=True)
            except (JanusError, JanusGone) as exc:
                log.info("Janus: unpublish of %s: %s", feed.leg_id, exc)

    async def watch(self, feed: Feed, feeds: set[int]) -> tuple[dict[str, Any] | None, dict[str, int]]:
        """Watch exactly ``feeds`` (feed ids) on the page's subscriber handle: Janus's new offer for the page (None
        when nothing changed) and which feed each of its m-lines carries (mid → feed id). A camera starts at its
        lowest layer, until the page asks for the one its tile needs (``configure``): asked for later, before the
        first picture, Janus kept the highest until its next periodic keyframe (10 s)."""
        client, room = self._connected(), await self.room(feed.conference)
        add, drop = sorted(feeds - feed.watching), sorted(feed.watching - feeds)
        if not add and not drop:
            return None, {}
        if feed.subscriber is None:
            if not add:
                return None, {}
            feed.subscriber = await client.attach(VIDEOROOM, self._listener(feed.key))
            data, offer = await client.message(feed.subscriber, {
                "request": "join", "ptype": "subscriber", "room": room.id, "pin": room.pin, "use_msid": True,
                "streams": [{"feed": other, "substream": 0} for other in add]}, later=True)  # fmt: skip
        else:
            update: dict[str, Any] = {"request": "update"}  # an empty list is refused ("Empty subscription list")
            if add:
                update["subscribe"] = [{"feed": other, "substream": 0} for other in add]
            if drop:
                update["unsubscribe"] = [{"feed": other} for other in drop]
            data, offer = await client.message(feed.subscriber, update, later=True)
        return offer, self.streams(feed, data)

    @staticmethod
    def streams(feed: Feed, data: dict[str, Any]) -> dict[str, int]:
        """What the subscriber handle receives now, from Janus's list of its streams (after a join or an update,
        or an offer Janus made by itself when a feed it carried was unpublished): mid → feed id. What it watches
        is what Janus says, never what was asked: a camera turned off is dropped by Janus first, and a request to
        stop watching it then finds no publisher; kept as watched, the camera back on was never asked for again."""
        mids = {str(s["mid"]): int(s["feed_id"]) for s in data.get("streams", [])
                if s.get("active", True) and "feed_id" in s}  # fmt: skip
        feed.mids = mids
        feed.watching = set(mids.values())
        return mids

    async def configure(self, feed: Feed, layers: dict[str, int | None]) -> None:
        """What each of the subscriber's m-lines receives: a simulcast layer (0 the lowest, 2 the highest), or
        nothing (None: a tile off screen, a hidden tab) until asked again. Mids it does not have are left out."""
        streams: list[dict[str, Any]] = [
            {"mid": mid, "send": False} if layer is None else {"mid": mid, "send": True, "substream": layer}
            for mid, layer in layers.items() if mid in feed.mids
        ]  # fmt: skip
        if feed.subscriber is None or not streams:
            return
        feed.layers.update({s["mid"]: s.get("substream") for s in streams})
        await self._connected().message(feed.subscriber, {"request": "configure", "streams": streams}, later=True)
        # A layer changes on the publisher's next keyframe, which Janus asks for (a PLI) at most once a second:
        # one asked for within a second of another is put off, and Janus 1.1 never sends a put-off PLI for a
        # browser's feed (only for its remote publishers'), so the change waited for its periodic keyframe
        # (10 s). Asked again a second later, the PLI goes.
        switching = {s["mid"]: s["substream"] for s in streams if "substream" in s}
        if switching:
            task = asyncio.get_running_loop().create_task(self._again(feed, switching))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _again(self, feed: Feed, layers: dict[str, int]) -> None:
        await asyncio.sleep(PLI_GAP_S)
        still = [{"mid": mid, "send": True, "substream": layer} for mid, layer in layers.items()
                 if feed.layers.get(mid) == layer and mid in feed.mids]  # fmt: skip
        if still and feed.subscriber is not None and self.current(feed):
            with contextlib.suppress(JanusError, JanusGone, TimeoutError):
                await self._connected().message(feed.subscriber, {"request": "configure", "streams": still},
                                                later=True)  # fmt: skip

    async def start(self, feed: Feed, answer: dict[str, Any]) -> None:
        """The page's answer to the subscriber offer: the feeds start flowing."""
        if feed.subscriber is None:
            raise JanusError(0, "nothing subscribed")
        await self._connected().message(feed.subscriber, {"request": "start"}, answer, later=True)
        await self._if_complete(feed.subscriber, answer)

    async def trickle(self, feed: Feed, which: str, candidate: dict[str, Any] | None) -> None:
        handle = feed.publisher if which == "publisher" else feed.subscriber
        if handle is not None:
            await self._connected().trickle(handle, candidate)

    async def leave(self, feed: Feed) -> None:
        """The page left the room: its handles go (Janus tells the others its feed is gone)."""
        client = self.client if self.current(feed) else None  # an earlier Janus's handles went with it
        if client is not None and feed.publisher is not None:
            # Out of the room first (the others are told at once); a detach alone lets the feed linger while
            # Janus tears the PeerConnection down.
            try:
                await client.message(feed.publisher, {"request": "leave"}, later=True)
            except (JanusError, JanusGone, TimeoutError) as exc:
                log.info("Janus: leave of %s: %s", feed.leg_id, exc)
        for handle in (feed.publisher, feed.subscriber):
            if handle is not None and client is not None:
                await client.detach(handle)
        feed.publisher = feed.subscriber = None
        feed.published = False
        feed.watching = set()
        feed.mids = {}
        feed.layers = {}

    async def feeds_in(self, conference: str) -> list[dict[str, Any]]:
        """The feeds published in the conference's room (id, display: the leg id)."""
        room = self._rooms.get(conference)
        if room is None or self._admin is None:
            return []
        data, _ = await self._connected().message(self._admin, {"request": "listparticipants", "room": room.id,
                                                                "secret": room.secret})  # fmt: skip
        return [p for p in data.get("participants", []) if p.get("publisher")]
