"""The user table: the six fields fastapi-users' UserProtocol needs, as a plain SQLModel."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (
        # Emails are unique regardless of case; fastapi-users looks them up with lower().
        sa.Index("uq_app_user_email_lower", sa.func.lower(sa.column("email")), unique=True),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, nullable=False)
    hashed_password: str = Field(max_length=1024, nullable=False)
    is_active: bool = Field(default=True, nullable=False)
    is_superuser: bool = Field(default=False, nullable=False)
    is_verified: bool = Field(default=False, nullable=False)
    # Delete conversations this many days after their last activity (30, 90, 180 or 365);
    # None: never (RETENTION_MAX_DAYS still applies).
    retention_days: int | None = Field(default=None, nullable=True)
    created_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


def _utc(nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class SignIn(SQLModel, table=True):
    """One sign-in: a cookie in a browser or a bearer token of an API client.

    The token carries this row's id; every authenticated request checks the row in the same
    query that reads the user, so ending a sign-in takes effect on every instance at once.
    """

    __tablename__ = "sign_in"
    __table_args__ = (sa.Index("ix_sign_in_user_created", "user_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    kind: str = Field(max_length=16, nullable=False)  # "cookie" or "bearer"
    device: str = Field(max_length=200, nullable=False)
    ip: str = Field(max_length=64, nullable=False)
    created_at: datetime = Field(sa_column=_utc())
    last_used_at: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())
    ended_at: datetime | None = Field(default=None, sa_column=_utc(nullable=True))


class AccountEvent(SQLModel, table=True):
    """Audit trail of account-level events (a deletion). No content, no email: the user's
    id, what happened, when, and row counts."""

    __tablename__ = "account_event"
    # What the audit purge scans (ACCOUNT_EVENT_RETENTION_DAYS).
    __table_args__ = (sa.Index("ix_account_event_at", "at"),)

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    # Deliberately not `user_id` and no foreign key: the row outlives the user.
    subject_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, nullable=False, index=True))
    event: str = Field(max_length=40, nullable=False)
    at: datetime = Field(sa_column=_utc())
    detail: dict[str, int] = Field(
        default_factory=dict,
        sa_column=sa.Column(JSONB, nullable=False),
    )
