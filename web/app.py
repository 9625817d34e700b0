"""``create_app(settings, rooms)``: the aiohttp application (aiohttp ≥ 3.9 idioms: ``web.AppKey`` everywhere)."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

from aiohttp import web

from config import Settings
from rooms import Rooms

SETTINGS = web.AppKey("settings", Settings)
ROOMS = web.AppKey("rooms", Rooms)


async def healthz(request: web.Request) -> web.Response:
    """200 when the process serves and its database answers, 503 otherwise (for load balancers and probes)."""
    rooms = request.app[ROOMS]
    try:
        await asyncio.wait_for(asyncio.to_thread(rooms.ping), timeout=5)
    except Exception:  # any database failure is reported, not raised: this is the probe
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "version": version("passerelle")})


def create_app(settings: Settings, rooms: Rooms) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[ROOMS] = rooms
    app.router.add_get("/healthz", healthz)
    return app
