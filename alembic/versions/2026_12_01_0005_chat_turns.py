"""chat turns

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

A row per chat turn (app/turns/models.py): the turn opens and closes in two short
transactions, and the model writes in between with no connection held. Token usage is
summed per conversation on chat_session. Adding NOT NULL columns with a constant default
is a catalog-only change (PostgreSQL 11+), so this does not rewrite chat_session.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # noqa: F401  (autogenerate may refer to SQLModel's types)
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_turn",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("user_seq", sa.Integer(), nullable=False),
        sa.Column("reply_seq", sa.Integer(), nullable=True),
        sa.Column("assistant", sa.String(length=50), nullable=False),
        sa.Column("expired_session_id", sa.String(length=100), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("partial_reply", sa.Text(), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('generating', 'done', 'stopped', 'failed')",
            name=op.f("ck_chat_turn_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_session.id"],
            name=op.f("fk_chat_turn_session_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_chat_turn_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_turn")),
    )
    op.create_index(
        "ix_chat_turn_generating_heartbeat",
        "chat_turn",
        ["heartbeat_at"],
        unique=False,
        postgresql_where=sa.text("status = 'generating'"),
    )
    op.create_index(
        "ix_chat_turn_session_started", "chat_turn", ["session_id", "started_at"], unique=False
    )
    op.create_index(
        "uq_chat_turn_generating_session",
        "chat_turn",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("status = 'generating'"),
    )
    op.create_index(
        "uq_chat_turn_user_idempotency_key",
        "chat_turn",
        ["user_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.add_column(
        "chat_session",
        sa.Column("prompt_tokens", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "chat_session",
        sa.Column("completion_tokens", sa.BigInteger(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("chat_session", "completion_tokens")
    op.drop_column("chat_session", "prompt_tokens")
    op.drop_index(
        "uq_chat_turn_user_idempotency_key",
        table_name="chat_turn",
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.drop_index(
        "uq_chat_turn_generating_session",
        table_name="chat_turn",
        postgresql_where=sa.text("status = 'generating'"),
    )
    op.drop_index("ix_chat_turn_session_started", table_name="chat_turn")
    op.drop_index(
        "ix_chat_turn_generating_heartbeat",
        table_name="chat_turn",
        postgresql_where=sa.text("status = 'generating'"),
    )
    op.drop_table("chat_turn")
