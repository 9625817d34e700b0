"""Cameras: each room's browser cameras shown to the other browsers of the room.

Every room page offers ``SLOTS`` receive-only video streams in its first offer, so showing someone never needs a
new negotiation: the bridge puts a camera on a free slot of each other browser (``replaceTrack``) and tells the
page which slot shows whom. A camera is decoded once (aiortc's ``MediaRelay``) and encoded by aiortc for each
viewer: fine for consultations and small meetings, a CPU cost that grows with cameras × viewers (bench/RESULTS.md).
Browsers waiting in a lobby neither see nor are seen. Phones have no video: their participants appear in the list.

Two things about aiortc 1.16 found on the way: a sender whose track ends stops for good (so each slot's sender keeps
one :func:`slot_track` for the call, fed by whichever camera it shows); and with Chromium's offer (seven m-lines in
one BUNDLE group) aiortc left the receive-only video m-lines (mids 3 to 6) on a transport of their own that never
connects, so their senders never started (why, in aiortc's bundling, is not found yet):
:meth:`VideoRooms.open_slots` puts them on the bundle's transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SLOTS = 4  # cameras a page shows at once


VIDEO_CLOCK = 90000
STEP = VIDEO_CLOCK // 15  # the gap put between a slot's last picture and the first of another camera


def slot_track() -> Any:
    """The track a slot's sender always has: the frames of whichever camera the slot shows now, or none.

    aiortc's sender stops for good when its track ends, and a camera's track ends with its tab: so the sender never
    sees a camera's track, only this one. Its timestamps must keep rising across cameras (libvpx refuses a picture
    older than the last, and aiortc's sender then stops for good too): the first camera a slot shows keeps its own
    timestamps; a later one is shifted to follow on.

    Each picture handed out is the slot's own copy (~30 µs at 640×480): ``MediaRelay`` gives every page showing a
    camera the same frame, and both this track and PyAV's encoder (which rebases a frame's time to the codec's in
    place, from aiortc's worker thread) change the frame they get. Shared, one page's encoder saw timestamps
    written for another go backwards, libvpx refused the picture and that page's picture froze for good."""
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError

    class SlotTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self._source: Any = None
            self._changed = asyncio.Event()
            self._offset: int | None = None  # added to the current camera's timestamps; None until its first picture
            self._last_out: int | None = None

        def show(self, source: Any) -> None:
            old, self._source = self._source, source
            self._offset = None
            if old is not None:
                old.stop()  # a recv waiting on it ends: the next one reads the new camera
            self._changed.set()

        async def recv(self) -> Any:
            while True:
                source = self._source
                if source is None:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                try:
                    frame = await source.recv()
                except MediaStreamError:  # the camera left, or the slot shows another now
                    if self._source is source:
                        self._source = None
                    continue
                if self._offset is None:
                    self._offset = 0 if self._last_out is None else self._last_out + STEP - frame.pts
                pts = frame.pts + self._offset
                if self._last_out is not None and pts <= self._last_out:  # the camera's own clock stepped back
                    self._offset += self._last_out + 1 - pts
                    pts = self._last_out + 1
                self._last_out = pts
                own = _copy(frame)
                own.pts = pts
                return own

    return SlotTrack()


def _copy(frame: Any) -> Any:
    """A picture of one's own (the shared one stays as it is), in the encoder's format."""
    from av import VideoFrame

    source = frame.reformat(format="yuv420p")  # itself when it already is
    copy = VideoFrame.from_numpy_buffer(source.to_ndarray(), format="yuv420p")  # one copy of the pixels, not two
    copy.time_base = frame.time_base
    return copy


@dataclass
class _Viewer:
    slots: list[tuple[str, Any]]  # (mid, the slot's track) of the page's receive-only video streams
    notify: Callable[[dict[str, object]], Coroutine[Any, Any, None]]
    shown: list[str | None] = field(default_factory=list)  # the camera (leg id) on each slot


@dataclass
class _Camera:
    label: str
    track: Any


class VideoRooms:
    def __init__(self) -> None:
        self._cameras: dict[str, dict[str, _Camera]] = {}
        self._viewers: dict[str, dict[str, _Viewer]] = {}
        self._relay: Any = None

    @staticmethod
    def open_slots(pc: Any) -> list[tuple[str, Any]]:
        """Before answering: the page's receive-only video streams (aiortc keeps the offer's direction as seen from
        here, sendonly) are answered as sending, each with its slot track. Returns (mid, track) of each."""
        slots: list[tuple[str, Any]] = []
        primary = pc.getTransceivers()[0].receiver.transport
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video" and transceiver._offerDirection == "sendonly" and len(slots) < SLOTS:
                transceiver.direction = "sendonly"
                if transceiver.receiver.transport is not primary:  # see the module's notes
                    transceiver.receiver.setTransport(primary)
                    transceiver.sender.setTransport(primary)
                track = slot_track()
                transceiver.sender.replaceTrack(track)
                slots.append((transceiver.mid, track))
        return slots

    def enter(self, room: str, leg_id: str, label: str, camera: Any, slots: list[tuple[str, Any]],
              notify: Callable[[dict[str, object]], Coroutine[Any, Any, None]]) -> None:  # fmt: skip
        """A browser is in the room: its camera (or None) is shown to the others, theirs to it."""
        self._viewers.setdefault(room, {})[leg_id] = _Viewer(slots, notify, [None] * len(slots))
        if camera is not None:
            self._cameras.setdefault(room, {})[leg_id] = _Camera(label, camera)
            log.info("leg %s: camera shown in its room", leg_id)
        self._assign(room)

    def leave(self, room: str, leg_id: str) -> None:
        viewer = self._viewers.get(room, {}).pop(leg_id, None)
        if viewer is not None:
            for _, track in viewer.slots:
                track.show(None)
        if self._cameras.get(room, {}).pop(leg_id, None) is not None:
            self._assign(room)
        if not self._viewers.get(room):
            self._viewers.pop(room, None)
            self._cameras.pop(room, None)

    def _assign(self, room: str) -> None:
        from aiortc.contrib.media import MediaRelay

        if self._relay is None:
            self._relay = MediaRelay()
        cameras = self._cameras.get(room, {})
        for leg_id, viewer in self._viewers.get(room, {}).items():
            others = [camera for camera in cameras if camera != leg_id]
            keep = [c if c in others else None for c in viewer.shown]  # a camera stays on its slot
            for camera in others:
                if camera not in keep and None in keep:
                    keep[keep.index(None)] = camera
            if keep == viewer.shown:
                continue
            for index, (camera_id, (_, track)) in enumerate(zip(keep, viewer.slots, strict=True)):
                if camera_id != viewer.shown[index]:
                    track.show(None if camera_id is None else self._relay.subscribe(cameras[camera_id].track, False))
            viewer.shown = keep
            shown = [{"mid": mid, "label": cameras[c].label} for c, (mid, _) in zip(keep, viewer.slots, strict=True)
                     if c is not None]  # fmt: skip
            asyncio.get_running_loop().create_task(_tell(viewer.notify, {"type": "video", "slots": shown}))


async def _tell(notify: Callable[[dict[str, object]], Coroutine[Any, Any, None]], message: dict[str, object]) -> None:
    with contextlib.suppress(ConnectionError):  # the page is going: nothing to tell it
        await notify(message)
