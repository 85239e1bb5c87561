"""token budgets per user; a model per conversation

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

`usage_budget`: an administrator's per-user token budgets (null: the configured
QUOTA_TOKENS_PER_*, 0: unlimited). `ix_chat_turn_user_started` (with the token columns
included) makes a user's tokens since the start of the day or month an index-only read,
which every turn's opening does. `chat_session.model`: the model a conversation chose
(null: the default one).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_budget",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tokens_per_day", sa.BigInteger(), nullable=True),
        sa.Column("tokens_per_month", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "tokens_per_day >= 0", name=op.f("ck_usage_budget_tokens_per_day_not_negative")
        ),
        sa.CheckConstraint(
            "tokens_per_month >= 0", name=op.f("ck_usage_budget_tokens_per_month_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_usage_budget_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_usage_budget")),
    )
    op.create_index(
        "ix_chat_turn_user_started",
        "chat_turn",
        ["user_id", "started_at"],
        unique=False,
        postgresql_include=["prompt_tokens", "completion_tokens"],
    )
    op.add_column("chat_session", sa.Column("model", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("chat_session", "model")
    op.drop_index("ix_chat_turn_user_started", table_name="chat_turn")
    op.drop_table("usage_budget")
