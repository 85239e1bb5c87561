"""history: full-text search over titles and messages, import records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Search uses stored generated tsvector columns (config 'simple', so any language works)
with GIN indexes keyed by user_id first; a GIN index over a uuid needs btree_gin, a
trusted extension any database owner may create.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.add_column(
        "chat_message",
        sa.Column(
            "content_tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple'::regconfig, content)", persisted=True),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_chat_message_user_content_tsv",
        "chat_message",
        ["user_id", "content_tsv"],
        unique=False,
        postgresql_using="gin",
    )
    op.add_column(
        "chat_session",
        sa.Column(
            "title_tsv",
            postgresql.TSVECTOR(),
            sa.Computed("to_tsvector('simple'::regconfig, title)", persisted=True),
            nullable=True,
        ),
    )
    op.create_index(
        "ix_chat_session_user_title_tsv",
        "chat_session",
        ["user_id", "title_tsv"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_chat_session_user_status_activity",
        "chat_session",
        ["user_id", "status", sa.literal_column("last_activity_at DESC"), "id"],
        unique=False,
    )
    op.create_table(
        "chat_import",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_session.id"],
            name=op.f("fk_chat_import_session_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_chat_import_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id", "source_id", "content_hash", name=op.f("pk_chat_import")
        ),
    )
    op.create_index("ix_chat_import_session_id", "chat_import", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_chat_import_session_id", table_name="chat_import")
    op.drop_table("chat_import")
    op.drop_index("ix_chat_session_user_status_activity", table_name="chat_session")
    op.drop_index(
        "ix_chat_session_user_title_tsv", table_name="chat_session", postgresql_using="gin"
    )
    op.drop_column("chat_session", "title_tsv")
    op.drop_index(
        "ix_chat_message_user_content_tsv", table_name="chat_message", postgresql_using="gin"
    )
    op.drop_column("chat_message", "content_tsv")
    # btree_gin stays: other objects may use it, and it costs nothing.
