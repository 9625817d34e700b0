from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from config import Settings, load_settings
from rooms import Rooms
from rooms.db import make_engine, session_factory
from web import create_app


async def _get_health(settings: Settings, rooms: Rooms) -> tuple[int, dict[str, str]]:
    async with TestClient(TestServer(create_app(settings, rooms), host="127.0.0.1")) as client:
        response = await client.get("/healthz")
        return response.status, await response.json()


def test_health_ok(rooms: Rooms, settings: Settings) -> None:
    status, body = asyncio.run(asyncio.wait_for(_get_health(settings, rooms), 30))
    assert status == 200
    assert body["status"] == "ok"
    assert body["database"] == "ok"


def test_health_database_unreachable(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()  # a folder where the SQLite file should be: every connection fails
    url = f"sqlite:///{tmp_path / 'db'}"
    settings = load_settings(environ={"PASSERELLE_DATABASE__URL": url})
    engine = make_engine(url)
    try:
        rooms = Rooms(settings, session_factory(engine))
        status, body = asyncio.run(asyncio.wait_for(_get_health(settings, rooms), 30))
    finally:
        engine.dispose()
    assert status == 503
    assert body == {"status": "unavailable", "database": "unreachable"}
