"""summaries of long conversations

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

`path_summary`: what the model wrote about the start of a long conversation, the path
from the root through `through_seq`, sent in place of the messages the context budget
drops. Sealed like message content with ENCRYPTION_KEYS; goes with its conversation. A new
table: existing rows are untouched.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "path_summary",
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("through_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=True),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("through_seq > 0", name="through_seq_positive"),
        sa.ForeignKeyConstraint(
            ["session_id", "user_id"],
            ["chat_session.id", "chat_session.user_id"],
            name="fk_path_summary_session_id_user_id_chat_session",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_path_summary_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "through_seq", name=op.f("pk_path_summary")),
    )


def downgrade() -> None:
    op.drop_table("path_summary")
