"""Browser stand-ins for the web benchmarks: aiortc peer connections in their own process, each joining a room of a
running ``passerelle serve`` through its real signalling (``/ws/room/<ticket>``) and sending pre-encoded Opus on
its own 20 ms clock, as a browser does; what the bridge sends back is received and decoded, as a browser does.

Run by ``bench/web.py``: ``python -m bench.webclients --base ws://127.0.0.1:PORT --tickets FILE --seconds S``; the
tickets file has one ``ticket<TAB>talks`` per line (talks: 1 sends a voice-like signal, 0 a quiet microphone's
noise). Prints one JSON line when done: clients connected, packets sent and frames received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bridge.opus import FRAME, RATE, TIME_BASE, OpusEncoder


def voice_like(seconds: float, seed: int) -> npt.NDArray[np.int16]:
    """A talker: a 140 Hz glottal-like harmonic series under a syllabic (4 Hz) envelope, about −20 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, 1) ** 0.5
    noise = rng.standard_normal(t.size) * 0.02
    return np.clip((harmonics * envelope * 0.25 + noise) * 12000, -32768, 32767).astype(np.int16)


def quiet(seconds: float, seed: int) -> npt.NDArray[np.int16]:
    """A listener's open microphone: room noise around −60 dBFS."""
    return (np.random.default_rng(seed).standard_normal(int(RATE * seconds)) * 30).astype(np.int16)


def encode(samples: npt.NDArray[np.int16]) -> list[bytes]:
    encoder = OpusEncoder()
    return [encoder.encode(samples[i : i + FRAME]) for i in range(0, len(samples) - FRAME + 1, FRAME)]


def decode(packets: list[bytes]) -> npt.NDArray[np.int16]:
    """Opus packets (20 ms each) decoded to mono 48 kHz, as a receiver would."""
    import av

    codec = av.CodecContext.create("libopus", "r")
    codec.format, codec.layout, codec.sample_rate = "s16", "mono", RATE
    out = []
    for number, payload in enumerate(packets):
        packet = av.Packet(payload)
        packet.pts, packet.time_base = number * FRAME, TIME_BASE
        out += [frame.to_ndarray().reshape(-1) for frame in codec.decode(packet)]
    return np.concatenate(out)


def packet_track(packets: list[bytes], on_send: Any = None) -> Any:
    """An audio track that gives aiortc's sender pre-encoded packets every 20 ms of its own clock."""
    from aiortc import MediaStreamTrack
    from av import Packet

    class PacketTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.sent = 0
            self._start: float | None = None

        async def recv(self) -> Any:
            if self._start is None:
                self._start = time.monotonic()
            due = self._start + self.sent * FRAME / RATE
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            packet = Packet(packets[self.sent % len(packets)])
            packet.pts, packet.time_base = self.sent * FRAME, TIME_BASE
            if on_send is not None:
                on_send(self.sent, time.time())
            self.sent += 1
            return packet

    return PacketTrack()


class Client:
    def __init__(self, base: str, ticket: str, packets: list[bytes]) -> None:
        self.base, self.ticket, self.packets = base, ticket, packets
        self.received = 0
        self.connected = False
        self.track: Any = None
        self.pc: Any = None
        self.frames: list[Any] = []  # kept when asked (latency): (wall time, pts, samples)
        self.keep_frames = False

    async def run(self, session: Any, stop: asyncio.Event) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self.pc = pc = RTCPeerConnection()
        self.track = packet_track(self.packets)
        pc.addTrack(self.track)
        readers: list[asyncio.Task[None]] = []

        @pc.on("track")
        def on_track(track: Any) -> None:
            readers.append(asyncio.get_running_loop().create_task(self._receive(track)))

        async with session.ws_connect(f"{self.base}/ws/room/{self.ticket}") as socket:
            await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers its candidates here
            await socket.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
            waiter = asyncio.get_running_loop().create_task(stop.wait())
            while not stop.is_set():
                receive = asyncio.get_running_loop().create_task(socket.receive_json())
                done, _ = await asyncio.wait({receive, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    break
                message = receive.result()
                if message.get("type") == "answer":
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
                    self.connected = True
        for reader in readers:
            reader.cancel()
        await pc.close()

    async def _receive(self, track: Any) -> None:
        while True:
            frame = await track.recv()
            self.received += 1
            if self.keep_frames:
                self.frames.append((time.time(), frame.pts, frame.to_ndarray().reshape(-1, 2)[:, 0].copy()))


async def main_async(base: str, lines: list[str], seconds: float) -> dict[str, Any]:
    import aiohttp

    from bridge.webrtc import pin_host_addresses

    pin_host_addresses(("127.0.0.1",))
    encoded = {True: encode(voice_like(10, 1)), False: encode(quiet(10, 2))}
    clients = []
    for line in lines:
        ticket, talks = line.split("\t")
        clients.append(Client(base, ticket, encoded[talks.strip() == "1"]))
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        tasks = []
        for client in clients:  # a browser's arrival rate: ten a second
            tasks.append(asyncio.get_running_loop().create_task(client.run(session, stop)))
            await asyncio.sleep(0.1)
        print(json.dumps({"joined": len(clients)}), flush=True)
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "clients": len(clients),
        "connected": sum(c.connected for c in clients),
        "packets_sent": sum(c.track.sent for c in clients if c.track is not None),
        "frames_received": sum(c.received for c in clients),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--tickets", type=Path, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    lines = [line for line in args.tickets.read_text().splitlines() if line.strip()]
    import uvloop

    print(json.dumps(uvloop.run(main_async(args.base, lines, args.seconds))), flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
