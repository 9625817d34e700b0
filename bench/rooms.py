"""Storage figures that matter to the phone flow: how fast codes are allocated and how long a dial-in lookup takes.

A caller waits on ``resolve_dial_in`` after pressing ``#``: its latency must stay far below what a person notices
(~100 ms), with many conferences stored. Usage: ``passerelle bench rooms [--database-url URL] [--conferences N]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from config import load_settings
from rooms import ConferenceDraft, Rooms, codes
from rooms.db import make_engine, scratch_schema, session_factory, upgrade


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def scratch(url: str) -> Iterator[str]:
    """PostgreSQL: a throw-away schema, so the benchmark leaves the database as it found it."""
    if not url.startswith("postgresql"):
        yield url
        return
    with scratch_schema(url, "bench") as target:
        yield target


def run(url: str, conferences: int, lookups: int) -> dict[str, object]:
    settings = load_settings(environ={"PASSERELLE_DATABASE__URL": url})
    engine = make_engine(url)
    upgrade(engine)
    rooms = Rooms(settings, session_factory(engine))
    t0 = time.perf_counter()
    made = [rooms.create_conference(ConferenceDraft(name=f"bench {i}", entry_code="1234")) for i in range(conferences)]
    create_s = time.perf_counter() - t0
    latencies_ms = []
    when = datetime.now(UTC)
    for i in range(lookups):
        code = made[i % len(made)].code if i % 2 else codes.make_code(f"{i:08d}")  # half hits, half unknown
        t = time.perf_counter()
        rooms.resolve_dial_in(code, "1234", now=when)
        latencies_ms.append((time.perf_counter() - t) * 1000)
    engine.dispose()
    return {
        "backend": engine.dialect.name,
        "conferences": conferences,
        "create_per_s": round(conferences / create_s, 1),
        "resolve_ms_median": round(statistics.median(latencies_ms), 3),
        "resolve_ms_p99": round(_percentile(latencies_ms, 0.99), 3),
        "lookups": lookups,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench rooms")
    parser.add_argument("--database-url", action="append", default=[], help="PostgreSQL URL (repeatable)")
    parser.add_argument("--conferences", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for url in [f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", *args.database_url]:
            with scratch(url) as target:
                results.append(run(target, args.conferences, args.lookups))
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(), "results": results}))
    return 0
