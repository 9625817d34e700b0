"""the room's chat: its messages, kept for the conference's life and purged by the retention

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conference_id", sa.Uuid(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("sender_leg", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=True),
        sa.Column("recipient_leg", sa.String(length=40), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_chat_messages_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    op.create_index(op.f("ix_chat_messages_sent_at"), "chat_messages", ["sent_at"], unique=False)
    op.create_index("ix_chat_messages_conference_id_sent_at", "chat_messages", ["conference_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_conference_id_sent_at", table_name="chat_messages")
    op.drop_index(op.f("ix_chat_messages_sent_at"), table_name="chat_messages")
    op.drop_table("chat_messages")
