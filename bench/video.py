"""Video forwarding by Janus (the room's SFU) against the camera relay it replaced, on loopback.

Synthetic pages, no browser: aiortc peers publishing pre-encoded VP8 (made once with libvpx at the layers' sizes
and bitrates: 320 × 180 at 150 kbit/s, 1280 × 720 at 1.5 Mbit/s, 15 pictures a second, a keyframe every 2 s) into a
real Janus child started as `passerelle serve` starts it, through Passerelle's own Janus code (bridge/janus/), and
aiortc peers receiving what they watch on one connection each (Janus's multistream) and counting the pictures
that arrive whole (not decoded: the receivers' CPU is not what is measured). Janus's CPU is read from /proc over
the measuring window and divided by the streams it forwards. Passerelle itself is not on the media path: it relays
the signalling only (nothing per picture).

aiortc cannot send simulcast (rids), so a camera's two layers that matter for a training are published as two
feeds of the page (low and high); Janus then forwards each stream as it came, as it does a simulcast layer (with
simulcast it also reads the layers nobody watches: counted as published, below).

The relay it replaced (the bridge decoding each camera once and encoding it with aiortc for each viewer, before
issue 16) is measured in the same run: that code, kept here only for this comparison, in a process of its own.

Usage: ``passerelle bench video [--seconds 20] [--training 30] [--skip-relay]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from bench.sip import cpu_seconds

FPS = 15
LAYERS = {"low": (320, 180, 150_000), "mid": (640, 360, 500_000), "high": (1280, 720, 1_500_000)}
RECEIVED = {"frames": 0}  # pictures that arrived whole at every receiver of this process
_lock = threading.Lock()


def encoded(width: int, height: int, bitrate: int, seconds: float = 4.0) -> list[tuple[bytes, bool]]:
    """A moving synthetic picture (a gradient and a bright square sweeping across, some noise) encoded once with
    libvpx as a camera would be: (VP8 frame, is it a keyframe)."""
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, FPS), Fraction(FPS, 1)
    codec.bit_rate = bitrate
    codec.gop_size = 2 * FPS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"}
    rng = np.random.default_rng(width)
    y, x = np.mgrid[0:height, 0:width]
    out: list[tuple[bytes, bool]] = []
    frames = int(seconds * FPS)
    for n in range(frames + 1):
        luma = ((x + 4 * n) % 256 * 0.5 + (y % 128)).astype(np.uint8)
        size = height // 4
        left = (n * width // frames) % (width - size)
        luma[size : 2 * size, left : left + size] = 235
        luma = np.clip(luma + rng.integers(0, 6, luma.shape), 0, 255).astype(np.uint8)
        picture = np.concatenate([luma.reshape(-1), np.full(width * height // 2, 128, np.uint8)])
        frame = av.VideoFrame.from_numpy_buffer(picture.reshape(height * 3 // 2, width), format="yuv420p")
        frame.pts = n
        for packet in codec.encode(frame if n < frames else None):
            out.append((bytes(packet), packet.is_keyframe))
    return out


def packet_track(packets: list[tuple[bytes, bool]]) -> Any:
    """A video track handing aiortc's sender pre-encoded VP8 frames at 15 a second of its own clock."""
    from aiortc import MediaStreamTrack
    from av import Packet

    class PacketTrack(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.sent = 0
            self._start: float | None = None

        async def recv(self) -> Any:
            if self._start is None:
                self._start = time.monotonic()
            due = self._start + self.sent / FPS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            data, _ = packets[self.sent % len(packets)]
            packet = Packet(data)
            packet.pts, packet.time_base = self.sent * 6000, Fraction(1, 90000)
            self.sent += 1
            return packet

    return PacketTrack()


def count_instead_of_decoding() -> None:
    """The receivers count each picture that arrives whole instead of decoding it."""
    import aiortc.rtcrtpreceiver as receiver

    class Counting:
        def decode(self, encoded: Any) -> list[Any]:
            with _lock:
                RECEIVED["frames"] += 1
            return []

    counting: Any = Counting
    receiver.get_decoder = lambda codec: counting()  # type: ignore[attr-defined]


@dataclass
class Page:
    pc: Any = None
    tracks: list[Any] = field(default_factory=list)


# -- Janus ---------------------------------------------------------------------------------------------------------


def _peers(connection: Any) -> None:
    """A process of synthetic pages (aiortc): the coordinator asks it for offers and answers over ``connection``,
    and for how many pictures its receivers got. Several share the load generator's work (aiortc's RTP and SRTP are
    Python: the pages cost far more than Janus)."""
    count_instead_of_decoding()

    async def serve() -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from bridge.webrtc import pin_host_addresses

        pin_host_addresses(())  # Janus is not on loopback (its ICE leaves it out): this machine's other addresses
        layers: dict[str, list[tuple[bytes, bool]]] = {}
        pcs: dict[str, Any] = {}
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, connection.recv)
            if message is None:
                break
            kind, key, data = message
            if kind == "offer":  # a camera: its offer
                if data not in layers:
                    layers[data] = encoded(*LAYERS[data])
                pc = pcs[key] = RTCPeerConnection()
                pc.addTrack(packet_track(layers[data]))
                await pc.setLocalDescription(await pc.createOffer())
                connection.send(pc.localDescription.sdp)
            elif kind == "answered":
                await pcs[key].setRemoteDescription(RTCSessionDescription(sdp=data, type="answer"))
                connection.send("ok")
            elif kind == "view":  # a viewer: its answer to Janus's offer
                pc = pcs[key] = RTCPeerConnection()
                await pc.setRemoteDescription(RTCSessionDescription(sdp=data, type="offer"))
                await pc.setLocalDescription(await pc.createAnswer())
                connection.send(pc.localDescription.sdp)
            elif kind == "frames":
                connection.send(RECEIVED["frames"])
        for pc in pcs.values():
            with contextlib.suppress(Exception):
                await pc.close()

    import uvloop

    uvloop.run(serve())


class Peers:
    """The coordinator's side of one :func:`_peers` process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._mine, theirs = context.Pipe()
        self.process = context.Process(target=_peers, args=(theirs,), daemon=True)
        self.process.start()
        self._lock = asyncio.Lock()

    async def ask(self, kind: str, key: str = "", data: str = "") -> Any:
        async with self._lock:  # one question at a time on the pipe
            self._mine.send((kind, key, data))
            return await asyncio.get_running_loop().run_in_executor(None, self._mine.recv)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._mine.send(None)
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()


async def janus_shape(name: str, publishers: dict[str, str], watching: dict[str, list[str]], seconds: float,
                      workers: int = 2, warm_s: float = 6.0) -> dict[str, Any]:  # fmt: skip
    """``publishers``: feed name → layer; ``watching``: viewer → the feeds it watches. Janus's CPU per stream."""
    from bridge.janus import EmbeddedJanus
    from bridge.janus.rooms import JanusRooms
    from config import load_settings

    up: dict[str, asyncio.Event] = {key: asyncio.Event() for key in publishers}

    def heard(key: str, message: dict[str, Any]) -> None:
        if message.get("janus") == "webrtcup" and key in up:
            up[key].set()

    with tempfile.TemporaryDirectory(prefix="passerelle-bench-video-") as folder:
        settings = load_settings(environ={"PASSERELLE_VIDEO__FOLDER": str(Path(folder) / "janus")})
        rooms = JanusRooms(heard)
        janus = EmbeddedJanus(settings, rooms.ready)
        stop = asyncio.Event()
        running = asyncio.create_task(janus.run(stop))
        peers = [Peers() for _ in range(workers)]
        try:
            await asyncio.wait_for(janus.ready.wait(), 15)
            assert janus.process is not None  # noqa: S101 - it is up
            pid = janus.process.pid
            idle_core = await _core(pid, min(5.0, seconds / 2))  # Janus with nothing to do
            feeds = {}
            for number, (key, layer) in enumerate(publishers.items()):  # a browser's arrival rate: ten a second
                worker = peers[number % workers]
                offer = await worker.ask("offer", key, layer)
                feed = feeds[key] = rooms.feed("bench", key)
                answer = await rooms.publish(feed, {"type": "offer", "sdp": offer})
                await worker.ask("answered", key, answer["sdp"])
                await asyncio.sleep(0.1)
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in up.values())), 60)
            await asyncio.sleep(2.0)
            ingest_core = await _core(pid, seconds / 2)  # the cameras coming in, nobody watching
            for number, (viewer, keys) in enumerate(watching.items()):
                worker = peers[number % workers]
                feed = rooms.feed("bench", viewer)
                offer, _ = await rooms.watch(feed, {feeds[key].feed_id for key in keys})
                assert offer is not None  # noqa: S101 - it watches something
                answer = await worker.ask("view", viewer, offer["sdp"])
                await rooms.start(feed, {"type": "answer", "sdp": answer})
                await asyncio.sleep(0.1)
            await asyncio.sleep(warm_s)  # every receiver past its first keyframe
            frames0 = sum([await worker.ask("frames") for worker in peers])
            janus0, clients0, t0 = cpu_seconds(pid), _cpu(peers), time.monotonic()
            await asyncio.sleep(seconds)
            elapsed = time.monotonic() - t0
            janus_core = (cpu_seconds(pid) - janus0) / elapsed
            clients_core = (_cpu(peers) - clients0) / elapsed
            frames = sum([await worker.ask("frames") for worker in peers]) - frames0
        finally:
            for worker in peers:
                worker.close()
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, 15)
    streams = sum(len(keys) for keys in watching.values())
    expected = streams * FPS * elapsed
    return {
        "shape": name,
        "published": len(publishers),
        "viewers": len(watching),
        "forwarded_streams": streams,
        "janus_core_pct": round(janus_core * 100, 2),
        "janus_idle_core_pct": round(idle_core * 100, 2),
        "janus_ingest_core_pct": round(ingest_core * 100, 2),
        # What each stream Janus forwards adds (its cost with the viewers, less its cost with the cameras alone).
        "janus_core_pct_per_forwarded_stream": round((janus_core - ingest_core) * 100 / streams, 3),
        "janus_core_pct_per_published_stream": round((ingest_core - idle_core) * 100 / len(publishers), 3),
        "pictures_delivered_pct": round(100 * frames / expected, 1),
        "load_clients_core_pct": round(clients_core * 100, 1),
    }


def _cpu(peers: list[Peers]) -> float:
    return sum(cpu_seconds(worker.process.pid) for worker in peers if worker.process.pid is not None)


async def _core(pid: int, seconds: float) -> float:
    """The share of one core the process used over the next ``seconds``."""
    before, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - t0)


# -- the relay it replaced -------------------------------------------------------------------------------------------


def _relay_process(connection: Any) -> None:
    """The bridge's camera relay before Janus: each camera decoded once (aiortc's MediaRelay) and encoded by aiortc
    for each viewer that shows it. Offers come over ``connection``; answers go back."""

    async def serve() -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from aiortc.contrib.media import MediaRelay

        relay, cameras, pcs = MediaRelay(), [], []
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, connection.recv)
            if message is None:
                break
            kind, sdp = message
            pc = RTCPeerConnection()
            pcs.append(pc)
            if kind == "camera":
                pc.on("track", lambda track: cameras.append(track))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if kind == "viewer":
                for transceiver, camera in zip(pc.getTransceivers(), cameras, strict=False):
                    transceiver.direction = "sendonly"
                    transceiver.sender.replaceTrack(relay.subscribe(camera, False))
            await pc.setLocalDescription(await pc.createAnswer())
            connection.send(pc.localDescription.sdp)
        for pc in pcs:
            await pc.close()

    asyncio.run(serve())


async def relay_shape(cameras: int, viewers: int, seconds: float, warm_s: float = 6.0) -> dict[str, Any]:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from bridge.webrtc import pin_host_addresses

    pin_host_addresses(("127.0.0.1",))
    mine, theirs = multiprocessing.get_context("spawn").Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_relay_process, args=(theirs,), daemon=True)
    process.start()
    loop = asyncio.get_running_loop()
    frames = encoded(*LAYERS["mid"])  # the relay's cameras were 640 × 360
    pcs = []

    async def ask(kind: str, pc: Any) -> None:
        await pc.setLocalDescription(await pc.createOffer())
        mine.send((kind, pc.localDescription.sdp))
        answer = await loop.run_in_executor(None, mine.recv)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    try:
        for _ in range(cameras):
            pc = RTCPeerConnection()
            pc.addTrack(packet_track(frames))
            pcs.append(pc)
            await ask("camera", pc)
        await asyncio.sleep(2.0)
        for _ in range(viewers):
            pc = RTCPeerConnection()
            for _ in range(cameras):
                pc.addTransceiver("video", direction="recvonly")
            pcs.append(pc)
            await ask("viewer", pc)
        await asyncio.sleep(warm_s)
        assert process.pid is not None  # noqa: S101 - started
        frames0, relay0, t0 = RECEIVED["frames"], cpu_seconds(process.pid), time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        relay_core = (cpu_seconds(process.pid) - relay0) / elapsed
        delivered = RECEIVED["frames"] - frames0
    finally:
        for pc in pcs:
            await pc.close()
        mine.send(None)
        process.join(10)
        if process.is_alive():
            process.kill()
    streams = cameras * viewers
    return {
        "shape": f"old relay: {cameras} cameras × {viewers} viewers (640 × 360)",
        "forwarded_streams": streams,
        "relay_core_pct": round(relay_core * 100, 2),
        "relay_core_pct_per_forwarded_stream": round(relay_core * 100 / streams, 3),
        "pictures_delivered_pct": round(100 * delivered / (streams * FPS * elapsed), 1),
    }


# -- the shapes ------------------------------------------------------------------------------------------------------


def pair() -> tuple[dict[str, str], dict[str, list[str]]]:
    """A consultation: two pages, each showing the other large."""
    return {"a": "high", "b": "high"}, {"va": ["b"], "vb": ["a"]}


def meeting(size: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A meeting: every camera on, every page showing the others in a grid (the middle layer)."""
    names = [f"p{i}" for i in range(size)]
    return {n: "mid" for n in names}, {f"v{n}": [m for m in names if m != n] for n in names}


def training(size: int, tiles: int = 9) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A training: every camera on (low and high layers), each page showing 9 tiles at the low layer and the
    speaker (the trainer; the trainer's page shows the first participant) at the high one."""
    names = [f"p{i}" for i in range(size)]
    publishers = {**{f"{n}-low": "low" for n in names}, **{f"{n}-high": "high" for n in names}}
    watching = {}
    for i, n in enumerate(names):
        speaker = names[1] if i == 0 else names[0]
        others = [m for m in names if m not in (n, speaker)][:tiles]
        watching[f"v{n}"] = [f"{speaker}-high", *(f"{m}-low" for m in others)]
    return publishers, watching


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench video", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--training", type=int, default=30, help="participants of the training shape")
    parser.add_argument("--meeting", type=int, default=6, help="participants of the meeting shape")
    parser.add_argument("--skip-relay", action="store_true")
    args = parser.parse_args(argv)
    count_instead_of_decoding()
    import uvloop

    async def run_all() -> list[dict[str, Any]]:
        results = []
        shapes: list[tuple[str, Callable[[], tuple[dict[str, str], dict[str, list[str]]]]]] = [
            ("room of 2 (each shows the other at 1280 × 720)", pair),
            (f"meeting of {args.meeting} (each shows the others at 640 × 360)", lambda: meeting(args.meeting)),
            (f"training of {args.training} (9 tiles low + the speaker high)", lambda: training(args.training)),
        ]
        for name, shape in shapes:
            publishers, watching = shape()
            results.append(await janus_shape(name, publishers, watching, args.seconds))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        if not args.skip_relay:
            results.append(await relay_shape(2, 3, args.seconds))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        return results

    results = uvloop.run(run_all())
    print(json.dumps({
        "benchmark": "video",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "shapes": results,
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
