"""temporary conversations

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

`chat_session.temporary`: a conversation kept out of history, search, exports of
everything and shares, and deleted for good (not archived) once idle past the TTL. The
partial index is what the sweep scans for them.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_session",
        sa.Column("temporary", sa.Boolean(), server_default="false", nullable=False),
    )
    op.create_index(
        "ix_chat_session_temporary_activity",
        "chat_session",
        ["last_activity_at"],
        postgresql_where=sa.text("temporary"),
    )


def downgrade() -> None:
    op.drop_index("ix_chat_session_temporary_activity", table_name="chat_session")
    op.drop_column("chat_session", "temporary")
