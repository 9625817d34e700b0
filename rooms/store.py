"""Opening the store: engine, schema check (or upgrade) and the :class:`Rooms` service."""

from __future__ import annotations

import logging

from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from config import ConfigError, Settings
from rooms import db
from rooms.service import Rooms

log = logging.getLogger(__name__)


def head_revision() -> str:
    script = ScriptDirectory(str(db.MIGRATIONS))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError("no migrations found")
    return head


def open_rooms(settings: Settings, *, upgrade_embedded: bool = True) -> tuple[Rooms, Engine]:
    """The service on the configured database.

    The embedded SQLite database is created and upgraded on the spot; a shared PostgreSQL database is upgraded only
    by ``passerelle db upgrade`` (an operator's decision when several nodes share it), so an older schema stops here.
    """
    url = settings.database.url.reveal()
    engine = db.make_engine(url)
    current = db.current_revision(engine)
    head = head_revision()
    if current != head:
        if upgrade_embedded and make_url(url).get_backend_name() == "sqlite":
            log.info("database schema %s -> %s", current or "empty", head)
            db.upgrade(engine)
        else:
            engine.dispose()
            raise ConfigError(
                f"database.url: schema is at {current or 'nothing'}, this version needs {head}; "
                "run `passerelle db upgrade`"
            )
    return Rooms(settings, db.session_factory(engine)), engine
