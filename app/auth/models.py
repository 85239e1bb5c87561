"""The user table: the six fields fastapi-users' UserProtocol needs, as a plain SQLModel."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
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
    created_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


class RevokedToken(SQLModel, table=True):
    """Tokens signed out before they expire. Rows are purged once the token would be dead anyway."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=64)
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    expires_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
