"""The local control channel: a Unix socket (mode 0600) on which ``passerelle serve`` answers commands from the
``passerelle`` CLI on the same machine — who waits in a lobby, admit, deny, call a number into a conference — until
the web site's host page exists.
Only the account that runs the service (and root) can open the socket: no password travels, nothing listens on the
network."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from bridge.callflow import CallFlow, Lobby
from bridge.clock import ClockStats, GcWatch
from bridge.engine import Engine
from config import PasserelleError
from rooms.errors import NotFoundError, ValidationError

LOBBY = web.AppKey("lobby", Lobby)
Stats = Callable[[], dict[str, Any]]
STATS: web.AppKey[Stats] = web.AppKey("stats")


class Dialler(Protocol):
    """(conference id, number, keys to send once answered) → leg id, once the callee is in the room."""

    def __call__(self, conference_id: str, number: str, digits: str = "", /) -> Awaitable[str]: ...


DIALLER: web.AppKey[Dialler] = web.AppKey("dialler")
DRAIN: web.AppKey[Callable[[], None]] = web.AppKey("drain")


class ControlError(PasserelleError):
    """The service is not running, or refused the command."""


async def _list(request: web.Request) -> web.Response:
    lobby = request.app[LOBBY]
    waiting = [{"leg": leg, "conference": str(room)} for leg, (room, _) in sorted(lobby.waiting.items())]
    return web.json_response(waiting)


async def _decide(request: web.Request) -> web.Response:
    lobby = request.app[LOBBY]
    leg, action = request.match_info["leg"], request.match_info["action"]
    done = lobby.admit(leg) if action == "admit" else lobby.deny(leg)
    if not done:
        return web.json_response({"error": f"no caller {leg} waits in a lobby"}, status=404)
    return web.json_response({"leg": leg, "decision": action})


async def _dial(request: web.Request) -> web.Response:
    """POST {"conference": id, "number": "+33…", "digits": "123#"}: answers once the callee is in the room, or
    says why not. ``digits`` (optional): keys sent once the call is answered, for a switchboard."""
    try:
        body = await request.json()
        conference, number, digits = str(body["conference"]), str(body["number"]), str(body.get("digits") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": 'expected JSON {"conference": ID, "number": "+33…"}'}, status=400)
    dial = request.app.get(DIALLER)
    if dial is None:
        return web.json_response({"error": "this service does not dial out"}, status=501)
    try:
        leg = await dial(conference, number, digits) if digits else await dial(conference, number)
    except ValidationError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except NotFoundError:
        return web.json_response({"error": f"no conference {conference}"}, status=404)
    except PasserelleError as exc:  # the dial-out itself failed: busy, no answer, no trunk
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response({"leg": leg, "conference": conference, "state": "in the room"}, status=201)


async def _drain(request: web.Request) -> web.Response:
    """POST /drain: no new call from now on (refused 503, the SIP front's probes answered 503); the calls in
    progress go on. What remains is in GET /stats (``lines``: the phone calls)."""
    drain = request.app.get(DRAIN)
    if drain is None:
        return web.json_response({"error": "this service does not drain"}, status=501)
    drain()
    return web.json_response({"draining": True})


async def _stats(request: web.Request) -> web.Response:
    stats = request.app.get(STATS)
    return web.json_response(stats() if stats is not None else {})


def media_stats(engine: Engine, flow: CallFlow, gc_watch: GcWatch | None = None) -> Stats:
    """What ``GET /stats`` answers: the media clock (and the garbage collections that stop it), where the legs
    are, and the final-key → room delays."""

    def collect() -> dict[str, Any]:
        clock = engine.clock.stats if engine.clock is not None else ClockStats()
        collected = gc_watch.stats if gc_watch is not None else None
        return {
            "clock": {"ticks": clock.ticks, "late": clock.late, "skipped": clock.skipped},
            "gc": None
            if collected is None
            else {
                "collections": list(collected.collections),
                "long": collected.long,
                "longest_ms": collected.longest_ms,
            },
            **engine.occupancy(),
            "lines": engine.lines(),
            "join_delay_ms": _spread(flow.join_delays),
            "relay_delay_ms": _spread(flow.relay_delays),  # callers taken to their room's node (a cluster)
        }

    return collect


def _spread(seconds: Iterable[float]) -> dict[str, Any]:
    delays = sorted(seconds)
    return {
        "count": len(delays),
        "p50": round(delays[len(delays) // 2] * 1000, 1) if delays else None,
        "p95": round(delays[int(len(delays) * 0.95)] * 1000, 1) if delays else None,
        "max": round(delays[-1] * 1000, 1) if delays else None,
    }


def control_app(
    lobby: Lobby, dialler: Dialler | None = None, stats: Stats | None = None, drain: Callable[[], None] | None = None
) -> web.Application:
    app = web.Application()
    app[LOBBY] = lobby
    if drain is not None:
        app[DRAIN] = drain
    if dialler is not None:
        app[DIALLER] = dialler
    if stats is not None:
        app[STATS] = stats
    app.router.add_get("/stats", _stats)
    app.router.add_get("/lobby", _list)
    app.router.add_post(r"/lobby/{leg}/{action:admit|deny}", _decide)
    app.router.add_post("/calls", _dial)
    app.router.add_post("/drain", _drain)
    return app


async def start(
    lobby: Lobby,
    path: Path,
    dialler: Dialler | None = None,
    stats: Stats | None = None,
    drain: Callable[[], None] | None = None,
) -> web.AppRunner:
    """Serve the control app on ``path`` (an old socket file left by a crash is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    runner = web.AppRunner(control_app(lobby, dialler, stats, drain), access_log=None)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    os.chmod(path, 0o600)
    return runner


def call(path: Path | None, method: str, route: str, body: Any = None, timeout_s: float = 10) -> Any:
    """One command to the running service; ControlError with a clear line when it is not there or says no."""
    if path is None:
        raise ControlError("control.socket: not set, so the service takes no local commands")

    async def send() -> Any:
        try:
            connector = aiohttp.UnixConnector(path=str(path))
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.request(method, f"http://passerelle{route}", json=body) as response,
            ):
                answer = await response.json()
                if response.status >= 400:
                    raise ControlError(str(answer.get("error", f"HTTP {response.status}")))
                return answer
        except (aiohttp.ClientConnectionError, FileNotFoundError):
            raise ControlError(f"no running passerelle answers on {path} (start `passerelle serve`)") from None

    return asyncio.run(asyncio.wait_for(send(), timeout_s))


def show(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
