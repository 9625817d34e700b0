"""Shared fixtures: settings, a database on each backend (SQLite file, PostgreSQL schema), a fake clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from config import Settings, load_settings
from rooms import Rooms
from rooms.db import make_engine, scratch_schema, session_factory, upgrade

PG_URL_VAR = "PASSERELLE_TEST_DATABASE_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-postgres", action="store_true", help="run the storage tests on SQLite only")


@dataclass
class FakeClock:
    """A settable UTC clock for timing logic (windows, code rest)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 28, 9, 0, tzinfo=UTC))


def postgres_url(config: pytest.Config) -> str:
    """The test server's URL; skipped locally when absent, a failure in CI (which must test PostgreSQL)."""
    if config.getoption("--no-postgres"):
        pytest.skip("--no-postgres")
    url = os.environ.get(PG_URL_VAR)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_URL_VAR} is not set: CI must run the storage tests on PostgreSQL")
        pytest.skip(f"{PG_URL_VAR} not set (scripts/test.sh sets it)")
    return url


@pytest.fixture
def postgres_schema_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL whose connections live in a fresh schema of the test database, dropped afterwards."""
    with scratch_schema(postgres_url(request.config), "t") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'passerelle.sqlite3'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(environ={"PASSERELLE_DATABASE__URL": database_url,
                                  "PASSERELLE_FILES__FOLDER": str(tmp_path / "files")})  # fmt: skip


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database.url.reveal())
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def rooms(settings: Settings, engine: Engine, clock: FakeClock) -> Rooms:
    return Rooms(settings, session_factory(engine), clock=clock)
