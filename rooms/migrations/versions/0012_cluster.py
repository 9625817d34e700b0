"""the nodes of a cluster sharing the database, and the node each room is mixed on

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sip_address", sa.String(length=300), nullable=False),
        sa.Column("public_url", sa.String(length=300), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_nodes")),
    )
    op.create_index(op.f("ix_nodes_heartbeat_at"), "nodes", ["heartbeat_at"], unique=False)
    op.create_table(
        "room_homes",
        sa.Column("conference_id", sa.Uuid(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_room_homes_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conference_id", name=op.f("pk_room_homes")),
    )
    op.create_index(op.f("ix_room_homes_node"), "room_homes", ["node"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_room_homes_node"), table_name="room_homes")
    op.drop_table("room_homes")
    op.drop_index(op.f("ix_nodes_heartbeat_at"), table_name="nodes")
    op.drop_table("nodes")
