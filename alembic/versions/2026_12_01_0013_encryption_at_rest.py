"""encryption at rest

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

With ENCRYPTION_KEYS set, user content is stored sealed (AES-256-GCM): each text column
gets a nullable `<name>_sealed bytea` beside it and each such table a `key_id` (which key
sealed the row; NULL for plaintext rows). Image bytes are sealed in place. Sealed
messages and titles are searched through `message_search_token`, a blind index of keyed
word and prefix hashes, one row per message (seq 0: the conversation's title), GIN over
(user_id, tokens). Without keys nothing here is written.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEALED = {
    "chat_session": ["title_sealed"],
    "chat_message": ["content_sealed"],
    "audit_event": ["title_sealed"],
    "post_draft": ["topic_sealed", "context_sealed"],
    "post_draft_version": ["text_sealed", "hashtags_sealed"],
    "published_post": ["text_sealed", "hashtags_sealed"],
    "stored_image": [],
}


def upgrade() -> None:
    for table, columns in _SEALED.items():
        for column in columns:
            op.add_column(table, sa.Column(column, sa.LargeBinary(), nullable=True))
        op.add_column(table, sa.Column("key_id", sa.String(length=32), nullable=True))
    op.create_table(
        "message_search_token",
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("message_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("tokens", postgresql.ARRAY(sa.LargeBinary()), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id", "user_id"],
            ["chat_session.id", "chat_session.user_id"],
            name=op.f("fk_message_search_token_session_id_user_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_message_search_token_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "message_seq", name=op.f("pk_message_search_token")),
    )
    op.create_index(
        "ix_message_search_token_user_tokens",
        "message_search_token",
        ["user_id", "tokens"],
        unique=False,
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("ix_message_search_token_user_tokens", table_name="message_search_token")
    op.drop_table("message_search_token")
    for table, columns in _SEALED.items():
        op.drop_column(table, "key_id")
        for column in columns:
            op.drop_column(table, column)
