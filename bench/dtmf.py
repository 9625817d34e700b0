"""In-band DTMF detector: cost per leg and the ITU-T Q.24 table, measured.

``passerelle bench dtmf [--legs 500] [--seconds 10]`` prints JSON:

- ``cost``: CPU per leg per 20 ms frame at 8 kHz, batched on ``--legs`` legs and for one leg alone; half the legs
  carry speech-level noise, half silence, and ``--typing`` of them key a digit every 270 ms throughout (a caller
  types a dozen digits per call: 10 % typing at every moment is a busy bridge). Target ≤ 5 µs batched;
- ``q24``: for each requirement, the share of trials where the detector did what Q.24 asks, over all 16 digits
  (and every alignment with the detector's hops for the duration rules).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from dtmf.detector import DtmfDetector
from dtmf.tones import DIGITS, ToneSpec, dbm0_to_amplitude, generate, synthesize

RATE = 8000


def _detect(signal: npt.NDArray[np.float64]) -> str:
    x = np.clip(np.rint(np.concatenate([np.zeros(800), signal, np.zeros(1600)])), -32768, 32767).astype(np.int16)
    detector = DtmfDetector(RATE)
    out = []
    for i in range(0, len(x), 160):
        out += [e.digit for e in detector.process(x[i : i + 160]).events if e.end is None]
    return "".join(out)


def _burst(digit: str, ms: float, **spec: float) -> npt.NDArray[np.float64]:
    return synthesize(digit, round(RATE * ms / 1000), RATE, ToneSpec(**spec))


def _share(trials: list[bool]) -> float:
    return round(sum(trials) / len(trials), 4)


def q24_table() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []

    def row(requirement: str, expect: str, trials: list[bool]) -> None:
        rows.append({"requirement": requirement, "expected": expect, "met": _share(trials), "trials": len(trials)})

    for offset in (1.5, -1.5):
        row(f"frequency {offset:+} % (row, column, both)", "detect",
            [_detect(_burst(d, 60, **kw)) == d for d in DIGITS
             for kw in ({"row_offset_pct": offset}, {"col_offset_pct": offset},
                        {"row_offset_pct": offset, "col_offset_pct": offset})])  # fmt: skip
    for offset in (3.5, -3.5):
        row(f"frequency {offset:+} % (row, column, both)", "reject",
            [_detect(_burst(d, 60, **kw)) == "" for d in DIGITS
             for kw in ({"row_offset_pct": offset}, {"col_offset_pct": offset},
                        {"row_offset_pct": offset, "col_offset_pct": offset})])  # fmt: skip
    for twist, accept in ((8.0, True), (-4.0, True), (10.0, False), (-10.0, False)):
        row(f"twist {twist:+} dB", "detect" if accept else "reject",
            [(_detect(_burst(d, 60, twist_db=twist)) == d) == accept for d in DIGITS])  # fmt: skip
    for level, accept in ((0.0, True), (-30.0, True), (-55.0, False)):
        row(f"level {level} dBm0 per tone", "detect" if accept else "reject",
            [(_detect(_burst(d, 60, level_dbm0=level)) == d) == accept for d in DIGITS])  # fmt: skip
    leads = [np.zeros(k) for k in range(0, 40, 2)]
    row("40 ms tone, every alignment", "detect", [_detect(np.r_[z, _burst(d, 40)]) == d for z in leads for d in DIGITS])
    row(
        "20 ms tone, every alignment", "reject", [_detect(np.r_[z, _burst(d, 20)]) == "" for z in leads for d in DIGITS]
    )

    def broken(digit: str, lead: npt.NDArray[np.float64], gap_samples: int) -> str:
        return _detect(np.concatenate([lead, _burst(digit, 50), np.zeros(gap_samples), _burst(digit, 50)]))

    row("10 ms interruption", "one digit", [broken(d, z, 80) == d for z in leads for d in DIGITS])
    row("40 ms pause between equal digits", "two digits", [broken(d, z, 320) == d * 2 for z in leads for d in DIGITS])
    sequence = (DIGITS * 63)[:1000]
    tones = generate(sequence, RATE, ToneSpec(on_ms=50, off_ms=50, level_dbm0=-20)).astype(np.float64)
    noise = np.random.default_rng(7).normal(0, dbm0_to_amplitude(-20 + 3.01 - 15) / np.sqrt(2), len(tones))
    found = _detect(tones + noise)
    row("white noise 15 dB S/N, 1,000 bursts at 10/s", "no miss, no extra",
        [a == b for a, b in zip(found.ljust(1000), sequence, strict=True)] + [len(found) == 1000])  # fmt: skip
    return rows


def cost(legs: int, seconds: float, digits_share: float) -> dict[str, float]:
    rng = np.random.default_rng(1)
    frames = int(seconds * 50)
    length = frames * 160
    block = rng.normal(0, 1500, (legs, length)) * (rng.random((legs, 1)) < 0.5)
    keyed = rng.random(legs) < digits_share
    tones = generate("0123456789" * 20, RATE, ToneSpec(on_ms=70, off_ms=200, level_dbm0=-15))[:length]
    block[keyed, : len(tones)] += tones
    data = np.clip(np.rint(block), -32768, 32767).astype(np.int16)

    def run(batch: npt.NDArray[np.int16], detector_legs: int) -> float:
        detector = DtmfDetector(RATE, legs=detector_legs)
        started = time.process_time()
        for f in range(frames):
            detector.process(batch[:, f * 160 : (f + 1) * 160])
        return time.process_time() - started

    batched = run(data, legs) / (frames * legs) * 1e6
    single_legs = min(legs, 20)
    single = sum(run(data[k : k + 1], 1) for k in range(single_legs)) / (frames * single_legs) * 1e6
    return {"legs": legs, "typing_share": digits_share, "us_per_leg_frame_batched": round(batched, 2),
            "us_per_leg_frame_single": round(single, 2),
            "share_of_core_for_legs": round(batched * legs / 20000, 4)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench dtmf")
    parser.add_argument("--legs", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--typing", type=float, nargs="+", default=[0.1, 0.3], help="shares of legs keying digits")
    parser.add_argument("--skip-q24", action="store_true")
    args = parser.parse_args(argv)
    table: Callable[[], list[dict[str, object]]] = q24_table
    costs = [cost(args.legs, args.seconds, share) for share in args.typing]
    print(json.dumps({"cost": costs, "q24": [] if args.skip_q24 else table()}))
    return 0
