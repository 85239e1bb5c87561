"""trash and audit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A deleted conversation goes to the trash (status 'trashed', with trashed_at, the status it
came from and purge_at) until the purge deletes it. audit_event records every trash,
restore, permanent delete, purge and admin delete. New nullable columns are catalog-only
changes; the check constraints read chat_session once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.CheckConstraint(
            "action IN ('trash', 'restore', 'delete', 'purge', 'admin_delete')",
            name=op.f("ck_audit_event_action_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["app_user.id"],
            name=op.f("fk_audit_event_actor_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_audit_event_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(
        "ix_audit_event_user_id",
        "audit_event",
        ["user_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.add_column("chat_session", sa.Column("trashed_at", sa.DateTime(timezone=True)))
    op.add_column(
        "chat_session", sa.Column("trashed_from", sqlmodel.sql.sqltypes.AutoString(length=16))
    )
    op.add_column("chat_session", sa.Column("purge_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_chat_session_trash_purge",
        "chat_session",
        ["purge_at"],
        unique=False,
        postgresql_where=sa.text("status = 'trashed'"),
    )
    op.drop_constraint(op.f("ck_chat_session_status_valid"), "chat_session", type_="check")
    op.create_check_constraint(
        op.f("ck_chat_session_status_valid"),
        "chat_session",
        "status IN ('active', 'archived', 'trashed')",
    )
    op.create_check_constraint(
        op.f("ck_chat_session_trash_consistent"),
        "chat_session",
        "(status = 'trashed') = (trashed_at IS NOT NULL AND purge_at IS NOT NULL)",
    )


def downgrade() -> None:
    # Trashed conversations go back to where they came from.
    op.execute(
        "UPDATE chat_session SET status = coalesce(trashed_from, 'archived') "
        "WHERE status = 'trashed'"
    )
    op.drop_constraint(op.f("ck_chat_session_trash_consistent"), "chat_session", type_="check")
    op.drop_constraint(op.f("ck_chat_session_status_valid"), "chat_session", type_="check")
    op.create_check_constraint(
        op.f("ck_chat_session_status_valid"), "chat_session", "status IN ('active', 'archived')"
    )
    op.drop_index(
        "ix_chat_session_trash_purge",
        table_name="chat_session",
        postgresql_where=sa.text("status = 'trashed'"),
    )
    op.drop_column("chat_session", "purge_at")
    op.drop_column("chat_session", "trashed_from")
    op.drop_column("chat_session", "trashed_at")
    op.drop_index("ix_audit_event_user_id", table_name="audit_event")
    op.drop_table("audit_event")
