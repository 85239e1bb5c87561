"""sealed share titles

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

A share link keeps the conversation's title as it was when shared; with ENCRYPTION_KEYS
that copy is sealed like the conversation's own (`title_sealed`, `key_id`).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("shared_link", sa.Column("title_sealed", sa.LargeBinary(), nullable=True))
    op.add_column("shared_link", sa.Column("key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("shared_link", "key_id")
    op.drop_column("shared_link", "title_sealed")
