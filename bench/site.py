"""The scheduling site under load, against a real ``passerelle serve`` (its media clock running): signed-in
professionals (aiohttp clients, each its own cookies) sign in, load the dashboard, plan conferences through the
wizard's form and through the JSON API, and list them. For each step: latency p50/p95, requests per second, and
the service's CPU per request (from /proc).

Usage: ``passerelle bench site [--users 20] [--requests 200] [--concurrency 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bench.sip import cpu_seconds
from bench.web import bridge
from rooms import Rooms
from rooms.db import make_engine, session_factory

PASSWORD = "bench password of some length"  # noqa: S105 - the benchmark's own throwaway accounts
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


async def signed_in(base: str, username: str) -> tuple[aiohttp.ClientSession, str, float]:
    """A client with its own cookies, signed in; its CSRF token; how long the sign-in took (s)."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.get(f"{base}/login") as response:
        token = CSRF.search(await response.text()).group(1)  # type: ignore[union-attr]
    start = time.perf_counter()
    async with http.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf": token},
                         allow_redirects=False) as response:  # fmt: skip
        took = time.perf_counter() - start
        if response.status != 303:
            raise SystemExit(f"sign-in refused ({response.status})")
    async with http.get(f"{base}/") as response:
        token = CSRF.search(await response.text()).group(1)  # type: ignore[union-attr]
    return http, token, took


def expect(response: aiohttp.ClientResponse, status: int) -> None:
    if response.status != status:
        raise SystemExit(f"{response.method} {response.url.path}: {response.status}, expected {status}")


def summary(latencies: list[float], elapsed: float, cpu: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[max(0, int(0.95 * len(ordered)) - 1)], 1),
        "per_s": round(len(ordered) / elapsed, 1),
        "service_cpu_ms_per_request": round(1000 * cpu / len(ordered), 2),
    }


async def phase(pid: int, count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    latencies: list[float] = []
    queue = iter(range(count))

    async def worker() -> None:
        for i in queue:
            start = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - start)

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return summary(latencies, time.perf_counter() - t0, cpu_seconds(pid) - cpu0)


async def load(
    base: str, pid: int, users: int, requests: int, concurrency: int, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Each step's figures; ``on_step(name)`` is called in a thread as each step ends (bench hostile reads the
    clock there)."""
    results: dict[str, Any] = {}
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    sessions: list[tuple[aiohttp.ClientSession, str, float]] = []
    for batch in range(0, users, concurrency):
        sessions += await asyncio.gather(*(signed_in(base, f"dr.bench{i}")
                                           for i in range(batch, min(users, batch + concurrency))))  # fmt: skip
    results["sign_in"] = summary([s[2] for s in sessions], time.perf_counter() - t0, cpu_seconds(pid) - cpu0)
    results["sign_in"]["note"] = "argon2id verify per sign-in, plus the login page and the dashboard around it"
    if on_step is not None:
        await asyncio.to_thread(on_step, "sign_in")
    day = (datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=3)).strftime("%Y-%m-%d")
    try:

        def client(i: int) -> tuple[aiohttp.ClientSession, str]:
            http, token, _ = sessions[i % len(sessions)]
            return http, token

        async def dashboard(i: int) -> None:
            http, _ = client(i)
            async with http.get(f"{base}/") as response:
                await response.read()
                expect(response, 200)

        async def plan(i: int) -> None:
            http, token = client(i)
            form = [
                ("csrf", token),
                ("name", f"Consultation {i}"),
                ("user", f"dr.bench{(i + 1) % users}"),
                ("email", f"patient{i}@example.org"),
                ("phone", f"06 12 {i % 100:02d} 56 78"),
                ("entry", "random"),
                ("schedule", "scheduled"),
                ("day", day),
                ("at", f"{8 + i % 10:02d}:{(i * 5) % 60:02d}"),
                ("duration", "30"),
                ("timezone", "Europe/Paris"),
                ("message", "Bonjour"),
                ("send", "later"),
            ]
            async with http.post(f"{base}/plan", data=form, allow_redirects=False) as response:
                await response.read()
                expect(response, 303)

        async def api_create(i: int) -> None:
            http, token = client(i)
            body = {
                "name": f"RCP {i}",
                "start": f"{day}T{8 + i % 10:02d}:30",
                "duration_min": 60,
                "timezone": "Europe/Paris",
                "entry_code": "random",
                "send": "later",
                "participants": {"emails": [f"b{i}@example.org"], "phones": [f"06 98 {i % 100:02d} 54 32"]},
            }
            async with http.post(f"{base}/api/v1/conferences", json=body, headers={"X-CSRF-Token": token}) as response:
                await response.read()
                expect(response, 201)

        async def api_list(i: int) -> None:
            http, _ = client(i)
            async with http.get(f"{base}/api/v1/conferences") as response:
                await response.read()
                expect(response, 200)

        for name, step in (("dashboard", dashboard), ("plan_form", plan), ("api_create", api_create),
                           ("api_list", api_list), ("dashboard_after", dashboard)):  # fmt: skip
            results[name] = await phase(pid, requests, concurrency, step)
            if on_step is not None:
                await asyncio.to_thread(on_step, name)
        per_user = 2 * requests / users
        results["dashboard_after"]["note"] = f"each user then owns ~{per_user:.0f} conferences"
    finally:
        for http, _, _ in sessions:
            await http.close()
    return results


def run(users: int, requests: int, concurrency: int, database_url: str | None) -> dict[str, Any]:
    extra = {"PASSERELLE_DATABASE__URL": database_url} if database_url else {}
    with bridge(None, **extra) as b:
        rooms = Rooms(b.settings, session_factory(make_engine(b.settings.database.url.reveal())))
        for i in range(users):
            rooms.create_user(f"dr.bench{i}", f"Dr Bench {i}", email=f"bench{i}@example.org")
            rooms.set_password(f"dr.bench{i}", PASSWORD)
        base = f"http://127.0.0.1:{b.http_port}"
        figures = asyncio.run(load(base, b.process.pid, users, requests, concurrency))
    return {
        "benchmark": "site",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": "postgresql" if database_url and database_url.startswith("postgresql") else "sqlite",
        "users": users, "concurrency": concurrency,
        **figures,
    }  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="passerelle bench site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200, help="requests per step")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database-url", help="e.g. a PostgreSQL URL (default: the bridge's own SQLite file)")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 500 or not 1 <= args.concurrency <= 100 or args.requests < 1:
        parser.error("--users from 1 to 500, --concurrency from 1 to 100, --requests ≥ 1")
    print(json.dumps(run(args.users, args.requests, args.concurrency, args.database_url), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
