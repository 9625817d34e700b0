"""files shared in a room: their metadata (the bytes are under [files] folder), purged by the retention

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = (
    "user.created", "conference.created", "conference.deleted", "personal-room.created", "code.regenerated",
    "invitee.added", "dial-in.admitted", "dial-in.refused", "dial-out", "conference.updated", "invitee.removed",
    "user.signed-in", "code.guessing", "conference.ended",
)  # fmt: skip
NEW = ("file.uploaded", "file.refused", "file.downloaded", "file.deleted")


def _kinds(kinds: tuple[str, ...]) -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint(op.f("ck_audit_events_audit_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_audit_events_audit_kind"), sa.column("kind").in_(kinds))


def upgrade() -> None:
    _kinds((*BEFORE, *NEW))
    op.create_table(
        "room_files",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conference_id", sa.Uuid(), nullable=False),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("uploader", sa.String(length=200), nullable=False),
        sa.Column("uploader_key", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_as", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_room_files_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_room_files")),
        sa.UniqueConstraint("stored_as", name=op.f("uq_room_files_stored_as")),
    )
    op.create_index(op.f("ix_room_files_conference_id"), "room_files", ["conference_id"], unique=False)
    op.create_index(op.f("ix_room_files_shared_at"), "room_files", ["shared_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_room_files_shared_at"), table_name="room_files")
    op.drop_index(op.f("ix_room_files_conference_id"), table_name="room_files")
    op.drop_table("room_files")
    with op.batch_alter_table("audit_events") as batch:
        batch.execute("DELETE FROM audit_events WHERE kind LIKE 'file.%'")
    _kinds(BEFORE)
