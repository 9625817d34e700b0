"""a room's whiteboard, saved for the conference's life and purged by the retention

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "room_boards",
        sa.Column("conference_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_room_boards_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conference_id", name=op.f("pk_room_boards")),
    )
    op.create_index(op.f("ix_room_boards_updated_at"), "room_boards", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_room_boards_updated_at"), table_name="room_boards")
    op.drop_table("room_boards")
