"""substring search

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Search matches Chinese, Japanese and emoji as substrings (ILIKE). Trigram GIN indexes
keyed by user first serve those queries; pg_trgm is a trusted extension any database
owner may create, like btree_gin (already there for the user_id column).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_chat_message_user_content_trgm",
        "chat_message",
        ["user_id", "content"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"content": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_chat_session_user_title_trgm",
        "chat_session",
        ["user_id", "title"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_chat_session_user_title_trgm", table_name="chat_session")
    op.drop_index("ix_chat_message_user_content_trgm", table_name="chat_message")
