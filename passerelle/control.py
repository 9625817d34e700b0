"""The local control channel: a Unix socket (mode 0600) on which ``passerelle serve`` answers commands from the
``passerelle`` CLI on the same machine — who waits in a lobby, admit, deny — until the web site's host page exists.
Only the account that runs the service (and root) can open the socket: no password travels, nothing listens on the
network."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bridge.callflow import Lobby
from config import PasserelleError

LOBBY = web.AppKey("lobby", Lobby)


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


def control_app(lobby: Lobby) -> web.Application:
    app = web.Application()
    app[LOBBY] = lobby
    app.router.add_get("/lobby", _list)
    app.router.add_post(r"/lobby/{leg}/{action:admit|deny}", _decide)
    return app


async def start(lobby: Lobby, path: Path) -> web.AppRunner:
    """Serve the control app on ``path`` (an old socket file left by a crash is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    runner = web.AppRunner(control_app(lobby), access_log=None)
    await runner.setup()
    await web.UnixSite(runner, str(path)).start()
    os.chmod(path, 0o600)
    return runner


def call(path: Path | None, method: str, route: str) -> Any:
    """One command to the running service; ControlError with a clear line when it is not there or says no."""
    if path is None:
        raise ControlError("control.socket: not set, so the service takes no local commands")

    async def send() -> Any:
        try:
            connector = aiohttp.UnixConnector(path=str(path))
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.request(method, f"http://passerelle{route}") as response,
            ):
                body = await response.json()
                if response.status >= 400:
                    raise ControlError(str(body.get("error", f"HTTP {response.status}")))
                return body
        except (aiohttp.ClientConnectionError, FileNotFoundError):
            raise ControlError(f"no running passerelle answers on {path} (start `passerelle serve`)") from None

    return asyncio.run(asyncio.wait_for(send(), 10))


def show(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
