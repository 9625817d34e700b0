"""signed-in browsers; conferences' calendar sequence

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BEFORE = (
    "user.created", "conference.created", "conference.deleted", "personal-room.created", "code.regenerated",
    "invitee.added", "dial-in.admitted", "dial-in.refused", "dial-out",
)  # fmt: skip
NEW = ("conference.updated", "invitee.removed", "user.signed-in")


def _kinds(kinds: tuple[str, ...]) -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint(op.f("ck_audit_events_audit_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_events_audit_kind"), sa.column("kind").in_(kinds))


def upgrade() -> None:
    _kinds((*BEFORE, *NEW))
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_sessions_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM audit_events WHERE kind IN ('conference.updated', 'invitee.removed', 'user.signed-in')")
    )
    _kinds(BEFORE)
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_expires_at"))
        batch_op.drop_index(batch_op.f("ix_web_sessions_user_id"))
    op.drop_table("web_sessions")
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.drop_column("sequence")
