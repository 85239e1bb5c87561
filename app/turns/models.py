"""One row per chat turn: what was asked, how the reply is going, how it ended.

The row is written when the turn opens (status `generating`), touched by checkpoints while
the model writes (partial text and a heartbeat), and closed once (done, stopped or failed).
Every instance reads it, so a turn can be followed, stopped and replayed from anywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)
from app.core.tenancy import same_owner_fk


class TurnStatus(StrEnum):
    GENERATING = "generating"
    DONE = "done"
    STOPPED = "stopped"
    FAILED = "failed"


FINISHED_STATUSES = frozenset({TurnStatus.DONE, TurnStatus.STOPPED, TurnStatus.FAILED})


def _tz(nullable: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class ChatTurn(SQLModel, table=True):
    __tablename__ = "chat_turn"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('generating', 'done', 'stopped', 'failed')", name="status_valid"
        ),
        # One reply at a time per conversation: the database refuses a second one.
        sa.Index(
            "uq_chat_turn_generating_session",
            "session_id",
            unique=True,
            postgresql_where=sa.text("status = 'generating'"),
        ),
        # Exactly-once: a retried request finds the turn its key opened.
        sa.Index(
            "uq_chat_turn_user_idempotency_key",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        ),
        # Turns whose process stopped sending heartbeats (what the stale check scans).
        sa.Index(
            "ix_chat_turn_generating_heartbeat",
            "heartbeat_at",
            postgresql_where=sa.text("status = 'generating'"),
        ),
        sa.Index("ix_chat_turn_session_started", "session_id", "started_at"),
        # What the idempotency-key purge scans: turns that still hold a key, oldest first.
        sa.Index(
            "ix_chat_turn_idempotency_started",
            "started_at",
            postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        ),
        # A user's tokens since a day or a month began (token budgets: app/usage).
        sa.Index(
            "ix_chat_turn_user_started",
            "user_id",
            "started_at",
            postgresql_include=["prompt_tokens", "completion_tokens"],
        ),
        same_owner_fk("chat_turn", "session_id", "chat_session"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    session_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    status: str = Field(default=TurnStatus.GENERATING, max_length=16, nullable=False)
    user_seq: int = Field(nullable=False)
    reply_seq: int | None = Field(default=None)
    assistant: str = Field(max_length=50, nullable=False)
    # The archived conversation this turn's message was meant for, when it had expired.
    expired_session_id: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    # The reply so far, as of the last checkpoint; cleared when the reply is stored.
    partial_reply: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # A failed turn's problem (status, code, detail), exactly as the client was told.
    error: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB, nullable=True))
    prompt_tokens: int | None = Field(default=None)
    completion_tokens: int | None = Field(default=None)
    started_at: datetime = Field(sa_column=_tz())
    heartbeat_at: datetime = Field(sa_column=_tz())
    cancel_requested_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))
