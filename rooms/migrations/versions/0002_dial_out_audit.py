"""audit events for dial-out

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BEFORE = (
    "user.created", "conference.created", "conference.deleted", "personal-room.created", "code.regenerated",
    "invitee.added", "dial-in.admitted", "dial-in.refused",
)  # fmt: skip
AFTER = (*BEFORE, "dial-out")


def _kinds(kinds: tuple[str, ...]) -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint(op.f("ck_audit_events_audit_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_events_audit_kind"), sa.column("kind").in_(kinds))


def upgrade() -> None:
    _kinds(AFTER)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM audit_events WHERE kind = 'dial-out'"))
    _kinds(BEFORE)
