"""``passerelle serve``: one process, one asyncio loop, running every part that exists (today: the store and the
web site's health check; the SIP gateway and the media clock join here with their issues)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from config import Settings
from rooms.store import open_rooms
from web import create_app

log = logging.getLogger(__name__)


async def _serve(settings: Settings, stop: asyncio.Event) -> None:
    rooms, engine = await asyncio.to_thread(open_rooms, settings)
    runner = web.AppRunner(create_app(settings, rooms), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        listen = settings.http.listen
        await web.TCPSite(runner, listen.host, listen.port).start()
        log.info("web site listening on %s (public URL %s)", listen, settings.http.public_base_url)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
        engine.dispose()


def serve(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await _serve(settings, stop)

    try:
        asyncio.run(main())
    except OSError as exc:  # the listen address is taken or not ours
        log.error("cannot listen on %s: %s", settings.http.listen, exc.strerror)
        return 1
    return 0
