"""Bridge-added latency between a browser and a phone, both ways, measured on the wire by chirp correlation.

A real ``passerelle serve``; a phone (SIPp, PCMU) types the conference code then sends a chirp every second; a web
participant (an aiortc client through the real signalling, sending pre-encoded Opus on its own clock) sends a chirp
every second, half a second after the phone's. Every UDP packet on the loopback interface is captured with its
kernel timestamp (a raw packet socket, no tcpdump needed). SRTP leaves RTP headers in clear, so the web side's
packets are placed by sequence number and timestamp: for each chirp, the time it entered the bridge is the arrival
of the packet that carries its first sample (plus that sample's offset in the packet), and the time it left is the
same for the packet the bridge sent with it, found by matched filter in the decoded output (the phone's PCMU from the
capture, the browser's Opus as the client decoded it). What remains is the bridge's own delay: jitter buffering,
waiting for the next tick, mixing, conversion and encoding (Opus's 6.5 ms look-ahead included), not the network's
or the end devices'.

Usage: ``passerelle bench latency [--seconds 30]`` (root: the capture needs a raw socket).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.rtp_pcap import write_call_pcap
from bench.sip import free_port, scenario
from bench.web import bridge, conferences, ticket_for
from bench.webclients import Client, decode, encode
from bridge.opus import FRAME, RATE

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4
CHIRP_S = 0.06
WEB_OFFSET_S, PHONE_OFFSET_S = 0.2, 0.7  # where each side's chirp starts in its second


def chirp(rate: int) -> npt.NDArray[np.float64]:
    """60 ms, 300 → 3,000 Hz (inside the telephone band), Hann-tapered."""
    t = np.arange(int(rate * CHIRP_S)) / rate
    sweep = np.sin(2 * np.pi * (300 * t + (3000 - 300) / (2 * CHIRP_S) * t**2))
    return np.asarray(sweep * np.hanning(t.size), np.float64)


def chirp_train(rate: int, seconds: float, offset_s: float) -> npt.NDArray[np.int16]:
    out = np.zeros(int(rate * seconds))
    one = chirp(rate) * 12000
    for second in range(int(seconds)):
        start = int((second + offset_s) * rate)
        out[start : start + one.size] = one
    return out.astype(np.int16)


def onsets(signal: npt.NDArray[Any], rate: int, threshold: float = 0.5) -> list[float]:
    """Sample positions (sub-sample, parabolic) where the chirp starts, by normalised matched filter."""
    template = chirp(rate)
    x = np.asarray(signal, np.float64)
    if x.size < template.size:
        return []
    corr = np.correlate(x, template, mode="valid")
    energy = np.sqrt(np.convolve(x * x, np.ones(template.size), mode="valid") * float(template @ template)) + 1e-9
    score = corr / energy
    found: list[float] = []
    position = 0
    while position < score.size:
        if score[position] > threshold:
            window = score[position : position + template.size]
            peak = position + int(np.argmax(window))
            if 0 < peak < score.size - 1:
                a, b, c = score[peak - 1], score[peak], score[peak + 1]
                shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
            else:
                shift = 0.0
            found.append(peak + float(shift))
            position = peak + template.size
        else:
            position += 1
    return found


def ulaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    u = ~np.frombuffer(payload, np.uint8)
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


@dataclass
class Packet:
    time: float
    src: int
    dst: int
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes


@dataclass
class Capture:
    """UDP on loopback, each packet once, with the kernel's receive timestamp; RTP (and SRTP) headers parsed."""

    packets: list[Packet] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.bind(("lo", 0))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, address = self._sock.recvmsg(65536, 1024)
            except TimeoutError:
                continue
            if address[2] == PACKET_OUTGOING:  # loopback shows each packet twice
                continue
            stamp = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    stamp = seconds + nanoseconds / 1e9
            self._parse(stamp, data)

    def _parse(self, stamp: float, frame: bytes) -> None:
        if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00":
            return
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 17:  # UDP
            return
        src, dst = struct.unpack("!HH", ip[header : header + 4])
        rtp = ip[header + 8 :]
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or 72 <= (rtp[1] & 0x7F) <= 76:  # not RTP, or RTCP
            return
        seq, timestamp, ssrc = struct.unpack("!HII", rtp[2:12])
        start = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[0] & 0x10 and len(rtp) >= start + 4:  # header extension
            start += 4 + 4 * struct.unpack("!H", rtp[start + 2 : start + 4])[0]
        self.packets.append(Packet(stamp, src, dst, rtp[1] & 0x7F, seq, timestamp, ssrc, rtp[start:]))


def stream_times(packets: list[Packet], clock: int) -> dict[int, float]:
    """RTP timestamp (relative to the stream's first packet, in samples) → arrival time of its packet."""
    if not packets:
        return {}
    first = packets[0].timestamp
    return {(p.timestamp - first) % 2**32: p.time for p in packets}


def at(times: dict[int, float], position: float, frame: int, rate: int) -> float | None:
    """When the sample at ``position`` (relative samples) went by: its packet's arrival plus its offset in it."""
    start = int(position // frame) * frame
    arrival = times.get(start)
    return None if arrival is None else arrival + (position - start) / rate


def pcmu_stream(packets: list[Packet]) -> npt.NDArray[np.int16]:
    first = packets[0].timestamp
    length = max((p.timestamp - first) % 2**32 for p in packets) + 160
    out = np.zeros(length, np.int16)
    for p in packets:
        start = (p.timestamp - first) % 2**32
        out[start : start + len(p.payload)] = ulaw_decode(p.payload)
    return out


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ms = np.array(values) * 1000
    return {"n": len(values), "p50": round(float(np.percentile(ms, 50)), 1),
            "p95": round(float(np.percentile(ms, 95)), 1), "max": round(float(ms.max()), 1)}  # fmt: skip


async def web_side(base: str, ticket: str, packets: list[bytes], seconds: float) -> Client:
    import aiohttp

    client = Client(base, ticket, packets)
    client.keep_frames = True
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        task = asyncio.get_running_loop().create_task(client.run(session, stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task
    return client


def run(seconds: float) -> dict[str, Any]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp is not installed (scripts/test.sh installs sip-tester)")
    from bridge.webrtc import pin_host_addresses

    pin_host_addresses(("127.0.0.1",))
    web_packets = encode(chirp_train(RATE, 10, WEB_OFFSET_S))  # looped by the client: a chirp every second
    decoder_view = decode(web_packets)  # the web chirps as the bridge decodes them (the client's codec delay)
    web_starts = [s for s in onsets(decoder_view, RATE) if s < len(web_packets) * FRAME]
    capture = Capture()
    with bridge() as b:
        (conference,) = conferences(b.settings, 1)
        media_port = free_port() // 2 * 2
        pcap = b.folder / "phone.pcap"
        length = write_call_pcap(pcap, 1.0, conference.code + "#", chirp_train(8000, seconds + 6, PHONE_OFFSET_S))
        callers = scenario(b.folder, [pcap], int((length + 1) * 1000))
        (b.folder / "rooms.csv").write_text("SEQUENTIAL\n0;\n")
        capture.start()
        phone = subprocess.Popen(
            [sipp, f"127.0.0.1:{b.sip_port}", "-sf", str(callers), "-inf", str(b.folder / "rooms.csv"), "-m", "1",
             "-i", "127.0.0.1", "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(media_port), "-nostdin",
             "-timeout", f"{int(length + 60)}s"],
            cwd=b.folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            client = asyncio.run(
                web_side(f"ws://127.0.0.1:{b.http_port}", ticket_for(b.settings, conference, "web"), web_packets,
                         seconds + 4)
            )  # fmt: skip
            lines = b.stats().get("lines", [])  # the phone's jitter buffer and line, as the bridge saw them
        finally:
            capture.stop()
            phone.terminate()
            phone.wait(timeout=10)
    sender_ssrc = client.pc.getSenders()[0]._ssrc if client.pc is not None else None
    to_phone = [p for p in capture.packets if p.dst == media_port and p.payload_type == 0]
    from_phone = [p for p in capture.packets if p.src == media_port and p.payload_type == 0]
    srtp = [p for p in capture.packets if media_port not in (p.src, p.dst) and p.payload_type not in (0, 101)]
    from_web = [p for p in srtp if p.ssrc == sender_ssrc]
    to_web = [p for p in srtp if p.ssrc != sender_ssrc and p.src != b.sip_port and p.dst != b.sip_port]
    to_web = [p for p in to_web if p.ssrc == to_web[0].ssrc] if to_web else []

    # Browser → phone: each web chirp, by the client's packet timestamps, then found in what the phone received.
    web_in = stream_times(from_web, RATE)
    sent_frames = len(from_web)
    entered = []
    for loop in range(sent_frames * FRAME // (len(web_packets) * FRAME) + 1):
        for start in web_starts:
            when = at(web_in, loop * len(web_packets) * FRAME + start, FRAME, RATE)
            if when is not None:
                entered.append(when)
    phone_out = stream_times(to_phone, 8000)
    left = [t for s in onsets(pcmu_stream(to_phone), 8000) if (t := at(phone_out, s, 160, 8000)) is not None]
    web_to_phone = pair(entered, left)

    # Phone → browser: phone chirps in the PCMU it sent, then in what the client decoded (frame pts = relative ts).
    phone_in = stream_times(from_phone, 8000)
    entered = [t for s in onsets(pcmu_stream(from_phone), 8000) if (t := at(phone_in, s, 160, 8000)) is not None]
    web_out = stream_times(to_web, RATE)
    if client.frames:
        heard = np.zeros(max(pts for _, pts, _ in client.frames) + FRAME, np.int16)
        for _, pts, samples in client.frames:
            heard[pts : pts + samples.size] = samples
        left = [t for s in onsets(heard, RATE) if (t := at(web_out, s, FRAME, RATE)) is not None]
    else:
        left = []
    phone_to_web = pair(entered, left)
    return {
        "benchmark": "latency",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds": seconds,
        "packets": {
            "web_to_bridge": len(from_web),
            "bridge_to_web": len(to_web),
            "phone_to_bridge": len(from_phone),
            "bridge_to_phone": len(to_phone),
        },
        "browser_to_phone_ms": percentiles(web_to_phone),
        "phone_to_browser_ms": percentiles(phone_to_web),
        "all_ms": percentiles(web_to_phone + phone_to_web),
        "phone_line": lines[0] if lines else None,
    }


def pair(entered: list[float], left: list[float], longest_s: float = 0.4) -> list[float]:
    """Each chirp in to the first chirp out after it (within ``longest_s``): the bridge's delay for it."""
    delays = []
    outs = sorted(left)
    for t in sorted(entered):
        later = [o - t for o in outs if 0 <= o - t <= longest_s]
        if later:
            delays.append(min(later))
    return delays


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the loopback capture needs root (a raw packet socket)")
    print(json.dumps(run(args.seconds), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
