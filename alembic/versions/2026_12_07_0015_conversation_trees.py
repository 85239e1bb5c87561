"""conversation trees

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

A conversation becomes a tree: each message names its parent (`parent_seq`, a composite
key to a message of the same conversation) and its depth, and the session names the leaf
of its active branch (`head_seq`). Every existing conversation becomes a single chain:
`parent_seq = seq - 1`, `depth = seq`, head = its last message.

The UPDATE rewrites every message row once: on a large database, run it at a quiet moment.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chat_message", sa.Column("parent_seq", sa.Integer(), nullable=True))
    op.add_column("chat_message", sa.Column("depth", sa.Integer(), nullable=True))
    op.add_column("chat_session", sa.Column("head_seq", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE chat_message SET depth = seq, parent_seq = CASE WHEN seq > 1 THEN seq - 1 END"
    )
    op.execute(
        "UPDATE chat_session AS s SET head_seq = m.last"
        " FROM (SELECT session_id, max(seq) AS last FROM chat_message GROUP BY session_id) m"
        " WHERE m.session_id = s.id"
    )
    op.alter_column("chat_message", "depth", nullable=False)
    op.create_check_constraint("parent_older", "chat_message", "parent_seq < seq")
    op.create_check_constraint("depth_positive", "chat_message", "depth > 0")
    op.create_index("ix_chat_message_session_parent", "chat_message", ["session_id", "parent_seq"])
    op.create_foreign_key(
        "fk_chat_message_parent_seq_chat_message",
        "chat_message",
        "chat_message",
        ["session_id", "parent_seq"],
        ["session_id", "seq"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(
        "fk_chat_message_parent_seq_chat_message", "chat_message", type_="foreignkey"
    )
    op.drop_index("ix_chat_message_session_parent", table_name="chat_message")
    op.drop_constraint(op.f("ck_chat_message_depth_positive"), "chat_message", type_="check")
    op.drop_constraint(op.f("ck_chat_message_parent_older"), "chat_message", type_="check")
    op.drop_column("chat_session", "head_seq")
    op.drop_column("chat_message", "depth")
    op.drop_column("chat_message", "parent_seq")
