"""The `api_key` table: one row per live key, holding a keyed hash of it, never the key."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)

NAME_MAX_CHARS = 100
PREFIX_CHARS = 11  # "ck_" and the key's first 8 characters: enough to tell keys apart
HASH_CHARS = 64  # HMAC-SHA256, hex


def _utc(nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class ApiKey(SQLModel, table=True):
    """A live key. Revoking deletes the row, so a key works exactly while its row exists:
    every request with a key looks the row up, on every instance, with no cache."""

    __tablename__ = "api_key"
    __table_args__ = (
        sa.UniqueConstraint("key_hash"),
        # A user's keys, newest first (GET /api/keys).
        sa.Index("ix_api_key_user_created", "user_id", sa.text("created_at DESC")),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    name: str = Field(max_length=NAME_MAX_CHARS, nullable=False)
    prefix: str = Field(max_length=PREFIX_CHARS, nullable=False)
    key_hash: str = Field(max_length=HASH_CHARS, nullable=False)
    created_at: datetime = Field(sa_column=_utc())
    last_used_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
