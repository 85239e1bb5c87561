"""The job queue's tables: one row per job, its input and result in chunks beside it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)
from app.core.tenancy import owner_key
from app.mail.repository import MAIL_JOB_KIND


class JobKind(enum.StrEnum):
    EXPORT = "export"
    IMPORT = "import"
    # A message of the mail outbox (app/mail/repository.py), owned by its addressee.
    MAIL = MAIL_JOB_KIND
    # Scheduled work of the whole instance (app/jobs/schedule.py): no owner.
    JOB_PURGE = "job_purge"
    TRASH_PURGE = "trash_purge"
    SHARE_LINK_PURGE = "share_link_purge"
    IDEMPOTENCY_PURGE = "idempotency_purge"
    SIGN_IN_PURGE = "sign_in_purge"
    ACCOUNT_EVENT_PURGE = "account_event_purge"
    RETENTION = "retention"
    # The sweep of idle sessions (app/conversations/tasks.py), in a thread of its own.
    SESSION_SWEEP = "session_sweep"
    # Key rotation's batches: queued when an operator asks (`python -m app keys rotate
    # --queue`), never on a schedule; no owner either.
    KEY_ROTATION = "key_rotation"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(SQLModel, table=True):
    """One piece of long work of one user, or a scheduled run of the instance's own work
    (no `user_id`, its interval's start in `scheduled_for`: the unique key
    (kind, scheduled_for) queues each run once, however many processes try).
    `queued` → `running` (a worker holds it and writes `heartbeat_at`) → `done` or
    `failed`; a running job whose heartbeat stops is taken again by any worker, up to
    JOB_MAX_ATTEMPTS tries. Finished jobs are deleted at `expires_at`, their chunks with
    them."""

    __tablename__ = "job"
    __table_args__ = (
        owner_key("job"),
        sa.Index("ix_job_user_created", "user_id", sa.text("created_at DESC")),
        # The queue: only the unfinished jobs are in it.
        sa.Index(
            "ix_job_pending",
            "created_at",
            postgresql_where=sa.text("status IN ('queued', 'running')"),
        ),
        sa.Index("ix_job_expires_at", "expires_at"),
        # One run of a scheduled kind per interval, whichever process queues it first.
        sa.Index(
            "uq_job_kind_scheduled_for",
            "kind",
            "scheduled_for",
            unique=True,
            postgresql_where=sa.text("scheduled_for IS NOT NULL"),
        ),
        # A user's job has an owner; a scheduled run has none, and an interval instead.
        sa.CheckConstraint(
            "(user_id IS NULL) = (scheduled_for IS NOT NULL)", name="scheduled_or_owned"
        ),
    )

    id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=True
        ),
    )
    kind: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    params: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    progress_done: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    progress_total: int | None = Field(default=None, sa_column=sa.Column(sa.Integer))
    attempts: int = Field(
        default=0, sa_column=sa.Column(sa.Integer, nullable=False, server_default="0")
    )
    result: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    error: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONB))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    started_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    heartbeat_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    scheduled_for: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )


class JobChunk(SQLModel, table=True):
    """A piece of a job's input (an uploaded import) or result (the ZIP), in order; sealed
    with the primary key of ENCRYPTION_KEYS when it is set (`key_id`)."""

    __tablename__ = "job_chunk"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["job_id", "user_id"],
            ["job.id", "job.user_id"],
            name="fk_job_chunk_job_id_user_id_job",
            ondelete="CASCADE",
        ),
    )

    job_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    part: str = Field(sa_column=sa.Column(sa.String(10), primary_key=True))
    n: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True))
    user_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False))
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    key_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(32)))
