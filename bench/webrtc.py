"""Per-frame costs on the browser side of the bridge (more come with the web-participant benchmark): the RFC 6465
audio level aiortc computes for every frame it sends, in aiortc's pure Python and in the bridge's numpy version.

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
    print(json.dumps(out, indent=2))
    return 0
