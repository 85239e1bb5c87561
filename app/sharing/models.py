"""Share links: a conversation as it was when its owner shared it, readable by anyone with
the link.

A link holds a snapshot, not a copy: the title at share time and `upto_seq`, the last
message it shows: the head at share time, so the link shows the path from the root to it
(the active branch then; versions on other branches never show). That is enough because
messages are append-only: a message's role,
content and time are written once and never change (a failed turn only adds a note to the
asking message's metadata, which a shared page does not show), and messages go only with
their conversation. Sharing again moves the snapshot forward and keeps the token.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)
from app.core.tenancy import same_owner_fk
from app.encryption import sealed

# secrets.token_urlsafe(32): 256 random bits in 43 characters.
TOKEN_BYTES = 32
TOKEN_MAX_CHARS = 64
EXPIRY_DAYS_MAX = 365


class SharedLink(SQLModel, table=True):
    __tablename__ = "shared_link"
    __table_args__ = (
        # One link per conversation: sharing again refreshes it.
        sa.UniqueConstraint("session_id"),
        sa.UniqueConstraint("token"),
        sa.CheckConstraint("upto_seq >= 0", name="upto_seq_not_negative"),
        # A user's links, newest first (GET /api/shares).
        sa.Index("ix_shared_link_user_created", "user_id", sa.text("created_at DESC")),
        # What the share-link purge scans: links that expired.
        sa.Index(
            "ix_shared_link_expires_at",
            "expires_at",
            postgresql_where=sa.text("expires_at IS NOT NULL"),
        ),
        # The link has the owner of the conversation it shows, or the database refuses it.
        same_owner_fk("shared_link", "session_id", "chat_session"),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, primary_key=True))
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    session_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    token: str = Field(max_length=TOKEN_MAX_CHARS, nullable=False)
    # The snapshot: the title when shared, and the last message seq it shows.
    title: str = Field(max_length=200, nullable=False)
    # With ENCRYPTION_KEYS the title is sealed like the conversation's (`app.encryption.sealed`).
    title_sealed: bytes | None = Field(
        default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True)
    )
    key_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(32), nullable=True))
    upto_seq: int = Field(nullable=False)
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    refreshed_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    # Null: until revoked.
    expires_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


sealed.register(
    SharedLink,
    sealed.SealSpec(
        table="shared_link",
        columns=(sealed.SealedColumn("title", "title_sealed"),),
        row_key=("session_id",),
    ),
)
