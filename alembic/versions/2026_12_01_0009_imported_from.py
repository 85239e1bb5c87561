"""imported from

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

An imported conversation says where it came from: `chatgpt`, `claude`, `openwebui` or
`chatkeep` (a Chatkeep export). Null for conversations started here.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chat_session", sa.Column("imported_from", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("chat_session", "imported_from")
