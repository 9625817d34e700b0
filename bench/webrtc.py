"""Per-frame costs on the browser side of the bridge: the RFC 6465 audio level aiortc computes for every frame it
sends, in aiortc's pure Python and in the bridge's numpy version; encoding 20 ms of speech-like audio to Opus, with
aiortc's encoder (stereo, 96 kbit/s, complexity 10) and the bridge's (mono, 32 kbit/s; voip or lowdelay; complexity
10 or 5).

Usage: ``passerelle bench webrtc [--frames 5000]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench webrtc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    args = parser.parse_args(argv)
    from aiortc.rtp import compute_audio_level_dbov
    from av import AudioFrame

    from bridge.webrtc import audio_level_dbov

    frame = AudioFrame(format="s16", layout="mono", samples=960)  # 20 ms at 48 kHz, as the bridge sends
    frame.planes[0].update((np.random.default_rng(1).standard_normal(960) * 3000).astype("<i2").tobytes())
    machine = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    out: dict[str, object] = {"benchmark": "webrtc", "date": time.strftime("%Y-%m-%d"), "machine": machine}
    levels = {"aiortc_level_us_per_frame": compute_audio_level_dbov, "numpy_level_us_per_frame": audio_level_dbov}
    for name, level in levels.items():
        start = time.perf_counter()
        for _ in range(args.frames):
            level(frame)
        out[name] = round((time.perf_counter() - start) / args.frames * 1e6, 1)
    from aiortc.codecs.opus import OpusEncoder as AiortcOpus

    from bench.webclients import voice_like
    from bridge.opus import FRAME, RATE, OpusEncoder

    speech = voice_like(args.frames * FRAME / RATE, 1)
    frames = [speech[i * FRAME : (i + 1) * FRAME] for i in range(args.frames)]
    aiortc_encoder = AiortcOpus()
    av_frames = []
    for number, samples in enumerate(frames):
        av_frame = AudioFrame.from_ndarray(samples.reshape(1, -1), "s16", "mono")
        av_frame.sample_rate, av_frame.pts = RATE, number * FRAME
        av_frames.append(av_frame)
    start = time.perf_counter()
    for av_frame in av_frames:
        aiortc_encoder.encode(av_frame)
    out["aiortc_opus_encode_us_per_frame"] = round((time.perf_counter() - start) / args.frames * 1e6, 1)
    for application, complexity in (("voip", 10), ("voip", 5), ("lowdelay", 10), ("lowdelay", 5)):
        encoder = OpusEncoder(complexity=complexity, application=application)
        start = time.perf_counter()
        size = sum(len(encoder.encode(samples)) for samples in frames)
        elapsed = time.perf_counter() - start
        out[f"bridge_opus_{application}_c{complexity}_encode_us_per_frame"] = round(elapsed / args.frames * 1e6, 1)
        out[f"bridge_opus_{application}_c{complexity}_kbit_s"] = round(
            size * 8 / (args.frames * FRAME / RATE) / 1000, 1
        )
    print(json.dumps(out, indent=2))
    return 0
