"""Alembic environment: migrations run on the engine handed over by :func:`rooms.db.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from rooms.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations with `passerelle db upgrade`, which supplies the database engine")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
        compare_type=True,
    )
    context.run_migrations()
