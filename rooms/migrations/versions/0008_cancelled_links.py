"""a deleted conference's links remembered as digests, so that its join page says it was cancelled

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cancelled_links",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_cancelled_links")),
    )
    op.create_index(op.f("ix_cancelled_links_cancelled_at"), "cancelled_links", ["cancelled_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_cancelled_links_cancelled_at"), table_name="cancelled_links")
    op.drop_table("cancelled_links")
