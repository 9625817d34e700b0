"""failure counters in the database (codes, sign-in), shared by every node and kept across restarts; a host
ending a conference in the audit trail

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BEFORE = (
    "user.created", "conference.created", "conference.deleted", "personal-room.created", "code.regenerated",
    "invitee.added", "dial-in.admitted", "dial-in.refused", "dial-out", "conference.updated", "invitee.removed",
    "user.signed-in",
)  # fmt: skip
NEW = ("code.guessing", "conference.ended")


def _kinds(kinds: tuple[str, ...]) -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint(op.f("ck_audit_events_audit_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_events_audit_kind"), sa.column("kind").in_(kinds))


def upgrade() -> None:
    _kinds((*BEFORE, *NEW))
    op.create_table(
        "failed_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failed_attempts")),
    )
    op.create_index("ix_failed_attempts_scope_key_at", "failed_attempts", ["scope", "key", "at"], unique=False)
    op.create_index(op.f("ix_failed_attempts_at"), "failed_attempts", ["at"], unique=False)
    op.create_table(
        "throttle_gates",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_throttle_gates")),
    )
    op.create_index(op.f("ix_throttle_gates_next_try_at"), "throttle_gates", ["next_try_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_throttle_gates_next_try_at"), table_name="throttle_gates")
    op.drop_table("throttle_gates")
    op.drop_index(op.f("ix_failed_attempts_at"), table_name="failed_attempts")
    op.drop_index("ix_failed_attempts_scope_key_at", table_name="failed_attempts")
    op.drop_table("failed_attempts")
    with op.batch_alter_table("audit_events") as batch:
        batch.execute("DELETE FROM audit_events WHERE kind IN ('code.guessing', 'conference.ended')")
    _kinds(BEFORE)
