"""The sweep is a scheduled run of the job queue: its own claim table goes

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-08

The job queue's unique (kind, scheduled_for) now gives the sweep its one run per interval,
so `sweeper_state` (the row processes raced to advance) is no longer read or written. An
instance of an older version still running during a rolling upgrade logs that its claim
failed and tries again; the new instances sweep meanwhile.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("sweeper_state")


def downgrade() -> None:
    op.create_table(
        "sweeper_state",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sweeper_state")),
    )
