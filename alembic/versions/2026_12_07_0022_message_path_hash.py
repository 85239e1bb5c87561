"""message path hashes, conversations started from the API

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

`chat_message.path_hash`: a keyed hash (HMAC-SHA256 under a key derived from SECRET_KEY)
chained along the message's path, `H(parent's path_hash, role, content)`, so that
`POST /v1/chat/completions` finds the stored path a client resends with one index read.
`chat_session.api_client`: the name of the API key a conversation was started with (null
for one started anywhere else).

No backfill: the key comes from SECRET_KEY (not known to a migration) and content may be
sealed, so rows written before this revision keep a null hash and are not matched; every
message written since is.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chat_message", sa.Column("path_hash", sa.LargeBinary(), nullable=True))
    op.add_column("chat_session", sa.Column("api_client", sa.String(length=100), nullable=True))
    op.create_index(
        "ix_chat_message_user_path_hash",
        "chat_message",
        ["user_id", "path_hash"],
        unique=False,
        postgresql_where=sa.text("path_hash IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_chat_message_user_path_hash",
        table_name="chat_message",
        postgresql_where=sa.text("path_hash IS NOT NULL"),
    )
    op.drop_column("chat_session", "api_client")
    op.drop_column("chat_message", "path_hash")
