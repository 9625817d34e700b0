"""``create_app(settings, rooms)``: the aiohttp application (aiohttp ≥ 3.9 idioms: ``web.AppKey`` everywhere)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import timedelta
from importlib.metadata import version
from pathlib import Path

from aiohttp import web

from bridge.callflow import Lobby
from bridge.engine import Engine
from bridge.webrtc import install_audio_jitter_fix, install_fast_audio_level, pin_host_addresses
from config import Settings
from notify.alerts import guessing_notice
from notify.invitations import Invitations
from notify.outbox import Outbox, Wakeup
from rooms import Rooms
from rooms.web_sessions import WebSessions
from web.api import Api
from web.auth import Auth
from web.live import Live
from web.pages import Pages
from web.room_files import RoomFiles
from web.site import Site

SETTINGS = web.AppKey("settings", Settings)
ROOMS = web.AppKey("rooms", Rooms)
PAGES = web.AppKey("pages", Pages)
LIVE = web.AppKey("live", Live)
AUTH = web.AppKey("auth", Auth)
OUTBOX_WAKEUP = web.AppKey("outbox wakeup", Wakeup)
STATIC = Path(__file__).with_name("static")


async def healthz(request: web.Request) -> web.Response:
    """200 when the process serves and its database answers, 503 otherwise (for load balancers and probes)."""
    rooms = request.app[ROOMS]
    try:
        await asyncio.wait_for(asyncio.to_thread(rooms.ping), timeout=5)
    except Exception:  # any database failure is reported, not raised: this is the probe
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "version": version("passerelle")})


def service_key(settings: Settings) -> bytes:
    """The key that signs tickets: from security.secret_key, or random for this process when none is set."""
    secret = settings.security.secret_key.reveal()
    return hashlib.sha256(b"passerelle tickets\0" + secret.encode()).digest() if secret else os.urandom(32)


def create_app(
    settings: Settings, rooms: Rooms, engine: Engine | None = None, lobby: Lobby | None = None
) -> web.Application:
    """The site; with ``engine`` (``passerelle serve`` passes its own) browsers can join rooms with audio."""
    key = service_key(settings)
    auth = Auth(settings, rooms, WebSessions(rooms.sessions, timedelta(hours=settings.http.session_hours),
                                             rooms.now), key)  # fmt: skip
    pages = Pages(settings, rooms, key)
    app = web.Application(client_max_size=1024 * 1024, middlewares=[auth.middleware, pages.site_errors])
    app[SETTINGS] = settings
    app[ROOMS] = rooms
    app[AUTH] = auth

    async def close_verifier(_: web.Application) -> None:
        await asyncio.to_thread(auth.verifier.close)  # its worker processes, if a sign-in started them

    app.on_cleanup.append(close_verifier)
    app[PAGES] = pages
    wakeup = app[OUTBOX_WAKEUP] = Wakeup()  # `passerelle serve` hands it to the outbox worker
    outbox = Outbox(rooms.sessions, settings.retry, rooms.now, wakeup)
    invitations = Invitations(settings, rooms, outbox)
    rooms.code_limits.notify_host = guessing_notice(settings, rooms, outbox)  # by phone or on the join page
    site = Site(settings, rooms, pages, auth, invitations)
    site.routes(app)
    Api(settings, rooms, site).routes(app)
    app.router.add_get("/healthz", healthz)
    for prefix in ("c", "i", "h"):  # the conference's own link, an invitee's link, the host link
        app.router.add_get(rf"/{prefix}/{{token:[A-Za-z0-9_.-]{{1,100}}}}", pages.join_page)
        app.router.add_post(rf"/{prefix}/{{token:[A-Za-z0-9_.-]{{1,100}}}}", pages.join)
    app.router.add_get(r"/room/{ticket:[A-Za-z0-9_.-]{1,2000}}", pages.room)
    app.router.add_get("/left", pages.left)
    if engine is not None:
        pin_host_addresses(settings.webrtc.host_addresses)
        install_fast_audio_level()
        install_audio_jitter_fix()
        live = app[LIVE] = Live(settings, rooms, engine, pages.key, lobby)
        live.invitations = invitations
        app.router.add_get(r"/ws/room/{ticket:[A-Za-z0-9_.-]{1,2000}}", live.room_socket)
        app.router.add_get(r"/room/{ticket:[A-Za-z0-9_.-]{1,2000}}/chat.txt", live.chat_text)
        live.files = RoomFiles(live)
        live.files.routes(app)
    app.router.add_get("/api/net/ping", pages.ping)
    app.router.add_get("/api/net/download", pages.download)
    app.router.add_static("/static", STATIC, append_version=False)
    return app
