"""pins and tags

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Conversations can be pinned (listed first) and tagged (lower-case labels, filtered with a
GIN index keyed by user). The history indexes gain `pinned DESC` in front of the
activity order, which is the list's new order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_session",
        sa.Column("pinned", sa.Boolean(), server_default="false", nullable=False),
    )
    op.add_column(
        "chat_session",
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.String(length=32)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
    )
    op.drop_index("ix_chat_session_user_activity", table_name="chat_session")
    op.create_index(
        "ix_chat_session_user_activity",
        "chat_session",
        [
            "user_id",
            sa.literal_column("pinned DESC"),
            sa.literal_column("last_activity_at DESC"),
            "id",
        ],
        unique=False,
    )
    op.drop_index("ix_chat_session_user_status_activity", table_name="chat_session")
    op.create_index(
        "ix_chat_session_user_status_activity",
        "chat_session",
        [
            "user_id",
            "status",
            sa.literal_column("pinned DESC"),
            sa.literal_column("last_activity_at DESC"),
            "id",
        ],
        unique=False,
    )
    op.create_index(
        "ix_chat_session_user_tags",
        "chat_session",
        ["user_id", "tags"],
        unique=False,
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("ix_chat_session_user_tags", table_name="chat_session", postgresql_using="gin")
    op.drop_index("ix_chat_session_user_status_activity", table_name="chat_session")
    op.create_index(
        "ix_chat_session_user_status_activity",
        "chat_session",
        ["user_id", "status", sa.literal_column("last_activity_at DESC"), "id"],
        unique=False,
    )
    op.drop_index("ix_chat_session_user_activity", table_name="chat_session")
    op.create_index(
        "ix_chat_session_user_activity",
        "chat_session",
        ["user_id", sa.literal_column("last_activity_at DESC"), "id"],
        unique=False,
    )
    op.drop_column("chat_session", "tags")
    op.drop_column("chat_session", "pinned")
