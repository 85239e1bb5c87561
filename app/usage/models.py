"""Per-user token budgets set by an administrator (the configured ones apply otherwise)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)


class UsageBudget(SQLModel, table=True):
    __tablename__ = "usage_budget"
    __table_args__ = (
        sa.CheckConstraint("tokens_per_day >= 0", name="tokens_per_day_not_negative"),
        sa.CheckConstraint("tokens_per_month >= 0", name="tokens_per_month_not_negative"),
    )

    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(), sa.ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
        )
    )
    # Tokens a day / a month; null: the configured QUOTA_TOKENS_PER_*, 0: unlimited.
    tokens_per_day: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    tokens_per_month: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger))
    updated_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class UsageDay(SQLModel, table=True):
    """Tokens a user's turns used, per UTC day of the turns' start: the ledger budgets read.

    A trigger on `chat_turn` (`usage_day_add`, migration 0029) adds every change to a
    turn's tokens here, so deleting a conversation (its turns go with it) never gives
    tokens back. Only deleting the account removes these rows.
    """

    __tablename__ = "usage_day"

    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(), sa.ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
        )
    )
    day: date = Field(sa_column=sa.Column(sa.Date(), primary_key=True))
    tokens: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
