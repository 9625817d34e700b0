"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entity tables; dial_codes keeps each code's owner and how long a released code rests.
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "user.created",
                "conference.created",
                "conference.deleted",
                "personal-room.created",
                "code.regenerated",
                "invitee.added",
                "dial-in.admitted",
                "dial-in.refused",
                name="audit_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("conference_id", sa.Uuid(), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_conference_id"), ["conference_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone_e164", sa.String(length=16), nullable=True),
        sa.Column(
            "language",
            sa.Enum("fr", "en", name="language", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "conferences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("scheduled", "personal", name="conference_kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("dial_code", sa.String(length=9), nullable=False),
        sa.Column("entry_code", sa.String(length=8), nullable=True),
        sa.Column("link_token", sa.String(length=32), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column(
            "lobby_mode",
            sa.Enum("off", "until-host", "always", name="lobby_mode", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind != 'personal' OR owner_id IS NOT NULL", name=op.f("ck_conferences_personal_has_owner")
        ),
        sa.CheckConstraint(
            "(starts_at IS NULL AND ends_at IS NULL) OR (starts_at IS NOT NULL AND ends_at IS NOT NULL "
            "AND starts_at < ends_at)",
            name=op.f("ck_conferences_window"),
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_conferences_owner_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conferences")),
        sa.UniqueConstraint("link_token", name=op.f("uq_conferences_link_token")),
    )
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conferences_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(
            "uq_conferences_personal_owner",
            ["owner_id"],
            unique=True,
            sqlite_where=sa.text("kind = 'personal'"),
            postgresql_where=sa.text("kind = 'personal'"),
        )

    op.create_table(
        "dial_codes",
        sa.Column("code", sa.String(length=9), nullable=False),
        sa.Column("conference_id", sa.Uuid(), nullable=True),
        sa.Column("reserved_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_dial_codes_conference_id_conferences"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_dial_codes")),
        sa.UniqueConstraint("conference_id", name=op.f("uq_dial_codes_conference_id")),
    )
    op.create_table(
        "invitees",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conference_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("user", "email", "phone", name="invitee_kind", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone_e164", sa.String(length=16), nullable=True),
        sa.Column(
            "language",
            sa.Enum("fr", "en", name="language", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("join_token", sa.String(length=32), nullable=False),
        sa.Column(
            "delivery_state",
            sa.Enum(
                "not-sent",
                "queued",
                "sent",
                "failed",
                name="delivery_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'user' AND user_id IS NOT NULL) OR (kind = 'email' AND email IS NOT NULL) "
            "OR (kind = 'phone' AND phone_e164 IS NOT NULL)",
            name=op.f("ck_invitees_address"),
        ),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_invitees_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_invitees_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitees")),
        sa.UniqueConstraint("join_token", name=op.f("uq_invitees_join_token")),
    )
    with op.batch_alter_table("invitees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitees_conference_id"), ["conference_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("invitees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitees_conference_id"))

    op.drop_table("invitees")
    op.drop_table("dial_codes")
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_conferences_personal_owner",
            sqlite_where=sa.text("kind = 'personal'"),
            postgresql_where=sa.text("kind = 'personal'"),
        )
        batch_op.drop_index(batch_op.f("ix_conferences_owner_id"))

    op.drop_table("conferences")
    op.drop_table("users")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_conference_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))

    op.drop_table("audit_events")
