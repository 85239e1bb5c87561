"""Per-user overrides of the configured policies, set by a superuser."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)


class RateLimitOverride(SQLModel, table=True):
    __tablename__ = "rate_limit_override"

    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(), sa.ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
        )
    )
    # One of app.ratelimit.policies.USER_POLICIES.
    policy: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    # A `limits` string such as "100/minute;2000/day".
    limits: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    updated_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )
