from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, text

from rooms import db
from rooms.models import AuditEvent, AuditKind, Base
from rooms.store import head_revision


def test_migrations_match_models(engine: Engine) -> None:
    """The migrations build exactly the schema the models describe (no forgotten migration)."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert db.current_revision(engine) == head_revision()


def test_migrations_down_and_up_again(engine: Engine) -> None:
    db.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    db.upgrade(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_every_audit_kind_is_accepted_by_the_migrated_schema(engine: Engine) -> None:
    """The CHECK on audit_events.kind, as the migrations left it, takes every kind the code can record."""
    with engine.begin() as conn:
        for kind in AuditKind:
            conn.execute(
                insert(AuditEvent.__table__).values(at=datetime.now(UTC), kind=kind.value, detail={})  # type: ignore[arg-type]
            )
    db.downgrade(engine, "0001")
    with engine.begin() as conn:
        kinds = set(conn.scalars(text("SELECT kind FROM audit_events")))
    later = {AuditKind.DIAL_OUT, AuditKind.CONFERENCE_UPDATED, AuditKind.INVITEE_REMOVED, AuditKind.SIGNED_IN,
             AuditKind.CODE_GUESSING, AuditKind.CONFERENCE_ENDED, AuditKind.FILE_UPLOADED, AuditKind.FILE_REFUSED,
             AuditKind.FILE_DOWNLOADED, AuditKind.FILE_DELETED}  # fmt: skip
    assert kinds == {k.value for k in AuditKind} - {k.value for k in later}, "downgrade keeps the older kinds only"
    db.upgrade(engine)
