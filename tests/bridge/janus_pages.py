"""What the Janus tests share: an embedded Janus running for the length of a block, and aiortc peers standing for
the pages — a camera that publishes, a viewer that decodes every frame it gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from bridge.janus import EmbeddedJanus, JanusClient
from config import Settings


@asynccontextmanager
async def embedded(
    settings: Settings, on_ready: Callable[[JanusClient], Awaitable[None]]
) -> AsyncIterator[EmbeddedJanus]:
    """A Janus child, up (its ``on_ready`` done) for the block, stopped after it."""
    stop = asyncio.Event()
    janus = EmbeddedJanus(settings, on_ready)
    running = asyncio.create_task(janus.run(stop))
    try:
        await asyncio.wait_for(janus.ready.wait(), 15)
        yield janus
    finally:
        stop.set()
        await asyncio.wait_for(running, 15)


class Camera:
    """A page's camera (aiortc's test pattern, VP8), to publish."""

    def __init__(self) -> None:
        from aiortc import RTCPeerConnection, VideoStreamTrack

        self.pc = RTCPeerConnection()
        self.pc.addTrack(VideoStreamTrack())

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def answered(self, sdp: str) -> None:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


class Viewer:
    """A page watching cameras: it answers the offer it is given and decodes every frame that comes."""

    def __init__(self) -> None:
        from aiortc import RTCPeerConnection

        self.pc = RTCPeerConnection()
        self.frames: list[Any] = []
        self._counting: list[asyncio.Task[None]] = []
        self.pc.on("track", self._track)

    def _track(self, track: Any) -> None:
        async def count() -> None:
            while True:
                self.frames.append(await track.recv())

        self._counting.append(asyncio.ensure_future(count()))

    async def answer(self, offer_sdp: str) -> str:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def until_frames(self, count: int, limit_s: float) -> int:
        """How many frames it decoded, once ``count`` or after ``limit_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while len(self.frames) < count and loop.time() < deadline:
            await asyncio.sleep(0.1)
        return len(self.frames)

    async def close(self) -> None:
        for task in self._counting:
            task.cancel()
        await self.pc.close()
