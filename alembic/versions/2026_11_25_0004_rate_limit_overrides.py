"""rate limit overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Per-user overrides of the configured rate-limit policies (app/ratelimit/models.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_override",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("limits", sa.String(length=200), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_rate_limit_override_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "policy", name=op.f("pk_rate_limit_override")),
    )


def downgrade() -> None:
    op.drop_table("rate_limit_override")
