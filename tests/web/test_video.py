"""The slots' tracks (web/video.py) with aiortc's relay and VP8 encoder, without browsers: a camera decoded once is
shared by every page that shows it, so nothing may change the frames it hands out."""

from __future__ import annotations

import asyncio
import fractions
import itertools
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.contrib.media import MediaRelay

from web.video import STEP, slot_track

TIME_BASE = fractions.Fraction(1, 90000)


class Camera(MediaStreamTrack):
    """A camera's decoded pictures, one per :meth:`tick`, with its own timestamps from ``start`` (15 a second)."""

    kind = "video"

    def __init__(self, start: int) -> None:
        super().__init__()
        self.pts = start
        self.ticks: asyncio.Queue[None] = asyncio.Queue()

    def tick(self) -> None:
        self.ticks.put_nowait(None)

    async def recv(self) -> Any:
        await self.ticks.get()
        frame = av.VideoFrame(160, 120, "yuv420p")
        frame.pts, frame.time_base = self.pts, TIME_BASE
        self.pts += STEP
        return frame


def test_two_pages_showing_one_camera_each_keep_rising_timestamps_and_encode() -> None:
    """Two slots (two pages) show the same camera, one of them after another camera: each encoder sees its own
    rising timestamps. (The slots used to write their own timestamps into the shared frame: one page's encoder
    then read the other's, went backwards and libvpx refused the frame; aiortc's sender stopped for good.)"""

    async def main() -> list[list[int]]:
        relay = MediaRelay()
        first, second = Camera(start=9_000_000), Camera(start=90_000)
        a, b = slot_track(), slot_track()
        b.show(relay.subscribe(first, False))
        for _ in range(5):  # page B shows the first camera for a while
            first.tick()
            await b.recv()
        a.show(relay.subscribe(second, False))
        b.show(relay.subscribe(second, False))  # then the second, whose clock is far behind the first's
        second.tick()  # both pages' subscriptions start on this picture: from now on each picture goes to both
        await asyncio.gather(a.recv(), b.recv())
        encoders = [Vp8Encoder(), Vp8Encoder()]
        seen: list[list[int]] = [[], []]
        for i in range(30):
            # Page A's encoder runs in a worker thread: sometimes before page B's slot has handed out the same
            # picture, sometimes after. Both orders, in turn.
            second.tick()  # one picture, handed by the relay to both pages
            frame_a = await a.recv()
            if i % 2:
                encoders[0].encode(frame_a)
                seen[0].append(frame_a.pts)
            frame_b = await b.recv()
            encoders[1].encode(frame_b)
            seen[1].append(frame_b.pts)
            if not i % 2:
                encoders[0].encode(frame_a)
                seen[0].append(frame_a.pts)
        for track in (a, b):
            track.stop()
        first.stop()
        second.stop()
        return seen

    seen = asyncio.run(asyncio.wait_for(main(), 30))
    for pts in seen:
        assert all(later > earlier for earlier, later in itertools.pairwise(pts)), pts


def test_a_slot_hands_out_its_own_copy_and_leaves_the_cameras_picture_alone() -> None:
    async def main() -> tuple[Any, Any, Any]:
        camera = Camera(start=123_000)
        relay = MediaRelay()
        slot, other = slot_track(), slot_track()
        slot.show(relay.subscribe(camera, False))
        other.show(relay.subscribe(camera, False))
        camera.tick()
        mine, theirs = await asyncio.gather(slot.recv(), other.recv())
        camera.tick()
        following = await asyncio.gather(slot.recv(), other.recv())
        slot.stop()
        other.stop()
        camera.stop()
        return mine, theirs, following[0]

    mine, theirs, following = asyncio.run(asyncio.wait_for(main(), 10))
    assert mine is not theirs, "two pages never get the same frame object"
    assert (mine.pts, following.pts) == (123_000, 123_000 + STEP), "the first camera keeps its own timestamps"
    assert (mine.width, mine.height, mine.format.name) == (160, 120, "yuv420p")
    Vp8Encoder().encode(mine)  # the encoder may change its frame (PyAV rebases its time)…
    assert theirs.pts == 123_000, "…the other page's stays as it was"
