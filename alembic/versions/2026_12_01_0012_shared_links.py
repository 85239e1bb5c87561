"""shared links

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

A conversation's share link: an unguessable token and a snapshot (the title when shared and
the last message seq it shows; messages are append-only, so no text is copied). One per
conversation; it points at the conversation's (id, user_id), so it always has the
conversation's owner, and it goes with the conversation and with its owner. A new, empty table: no
rewrite of anything else.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shared_link",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("upto_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("upto_seq >= 0", name=op.f("ck_shared_link_upto_seq_not_negative")),
        sa.ForeignKeyConstraint(
            ["session_id", "user_id"],
            ["chat_session.id", "chat_session.user_id"],
            name="fk_shared_link_session_id_user_id_chat_session",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_shared_link_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_link")),
        sa.UniqueConstraint("session_id", name=op.f("uq_shared_link_session_id")),
        sa.UniqueConstraint("token", name=op.f("uq_shared_link_token")),
    )
    op.create_index(
        "ix_shared_link_user_created",
        "shared_link",
        ["user_id", sa.literal_column("created_at DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_shared_link_user_created", table_name="shared_link")
    op.drop_table("shared_link")
