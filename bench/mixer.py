"""Mixer cost per tick in the shapes that matter, 10 % of legs talking.

``passerelle bench mixer [--ticks N] [--top-n N]`` prints JSON: for each shape the mixing time per tick (median,
p99), the CPU time per leg per tick and how many legs one core mixes in real time (20 ms per tick). Inputs are
written into the mixer's buffer before each timed tick (the legs' own I/O is not the mixer's cost); talkers carry
speech-level noise, the others a −60 dBFS background, so voice activity sees what a real room gives it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from mixer import Mixer, MixerConfig
from mixer.resample import ResamplerBank

SHAPES = [(1, 1000), (100, 10), (1000, 2)]


def run_shape(rooms: int, per_room: int, ticks: int, top_n: int, talking_share: float) -> dict[str, object]:
    config = MixerConfig(top_n=top_n)
    mixer = Mixer(config, capacity=rooms * per_room)
    for r in range(rooms):
        for leg in range(per_room):
            mixer.add_leg((r, leg), r)
    legs = rooms * per_room
    rng = np.random.default_rng(7)
    frame = config.frame_samples
    talking = rng.random(legs) < talking_share
    variants = 8  # different frames per leg, cycled, so caches do not flatter the figures
    background = rng.normal(0.0, 33.0, (variants, legs, frame))
    speech = rng.normal(0.0, 3000.0, (variants, legs, frame))
    blocks = np.where(talking[None, :, None], speech, background).astype(np.int16)
    wall, cpu = [], []
    for tick in range(ticks):
        buffer, present, _ = mixer.input_buffer()
        buffer[:] = blocks[tick % variants]
        present[:] = True
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        mixer.tick()
        wall.append(time.perf_counter() - t_wall)
        cpu.append(time.process_time() - t_cpu)
    warm = ticks // 10
    wall_ms = np.array(wall[warm:]) * 1000.0
    cpu_us_per_leg = float(np.sum(cpu[warm:])) / (ticks - warm) * 1e6 / legs
    median = float(np.median(wall_ms))
    return {
        "shape": f"{rooms} rooms x {per_room} legs",
        "legs": legs,
        "tick_ms_median": round(median, 3),
        "tick_ms_p99": round(float(np.percentile(wall_ms, 99)), 3),
        "cpu_us_per_leg_tick": round(cpu_us_per_leg, 3),
        "legs_per_core_realtime": int(config.frame_ms / median * legs),
    }


def resampling(frames: int = 1000, legs: int = 100) -> list[dict[str, object]]:
    """Cost of a leg's edge conversion per 20 ms frame, each direction: alone, and as the engine pays it, ``legs``
    legs of one rate converted together by a :class:`ResamplerBank`."""
    out: list[dict[str, object]] = []
    rng = np.random.default_rng(1)
    for rate_in, rate_out in ((8000, 48000), (48000, 8000), (16000, 48000), (48000, 16000)):
        figures: dict[str, object] = {"from_hz": rate_in, "to_hz": rate_out}
        for name, count in (("us_per_frame_alone", 1), ("us_per_leg_frame_batched", legs)):
            bank = ResamplerBank(rate_in, rate_out, count)
            rows = np.arange(count, dtype=np.intp)
            x = rng.normal(0, 3000, (count, rate_in // 50)).astype(np.int16)
            for _ in range(50):
                bank.process(x, rows)
            t_cpu = time.process_time()
            for _ in range(frames):
                bank.process(x, rows)
            figures[name] = round((time.process_time() - t_cpu) / (frames * count) * 1e6, 1)
        figures["delay_ms"] = round(bank.delay_ms, 2)
        out.append(figures)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench mixer")
    parser.add_argument("--ticks", type=int, default=1000)
    parser.add_argument("--top-n", type=int, default=4)
    parser.add_argument("--talking", type=float, default=0.1, help="share of legs talking")
    args = parser.parse_args(argv)
    results = [run_shape(r, p, args.ticks, args.top_n, args.talking) for r, p in SHAPES]
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
                      "numpy": np.__version__, "results": results, "resampling": resampling()}))  # fmt: skip
    return 0
