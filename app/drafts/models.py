"""The draft ledger: drafts, their versions, what was published, and stored images.

Every table carries `user_id`, every query in `ledger.py` filters on it (`app.core.tenancy`),
and every reference between them (and to the conversation) is to (id, user_id), so a row
never points at another user's draft, image or conversation.

A draft is one request ("a Facebook post about Diwali with image"). Regenerating a
pending draft adds a version to the same draft. Regenerating a draft that is already
published or cancelled opens a new draft for the same original request, linked by
`parent_draft_id`, because a published draft is closed: it has exactly one post.
A new request while a draft is pending marks the old one `superseded`.
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
from app.core.tenancy import owner_key, same_owner_fk
from app.encryption import sealed


class DraftStatus(StrEnum):
    PENDING = "pending"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


def _tz(nullable: bool = False, **kwargs: Any) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, **kwargs)


def _sealed() -> Any:
    """The sealed copy of a text column (ENCRYPTION_KEYS set); NULL for plaintext rows."""
    return Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))


def _key_id() -> Any:
    """Which key sealed the row's content; NULL: plaintext (encryption off, or older)."""
    return Field(default=None, sa_column=sa.Column(sa.String(32), nullable=True))


def _owner() -> Any:
    return sa.Column(sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False)


class StoredImage(SQLModel, table=True):
    """An image kept in PostgreSQL (bytea): every app instance can serve it, it is backed
    up with the rest of the data, and it goes away with its owner."""

    __tablename__ = "stored_image"
    __table_args__ = (
        sa.CheckConstraint("byte_size > 0", name="byte_size_positive"),
        owner_key("stored_image"),
    )

    id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: uuid.UUID = Field(sa_column=_owner())
    content_type: str = Field(max_length=100, nullable=False)
    # The image, or with `key_id` set the image sealed (`byte_size` and `sha256` are
    # the plaintext's).
    data: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    key_id: str | None = _key_id()
    byte_size: int = Field(nullable=False)
    sha256: str = Field(max_length=64, nullable=False)
    source: str = Field(max_length=32, nullable=False)  # "card" | "openai"
    created_at: datetime = Field(sa_column=_tz())


class PostDraft(SQLModel, table=True):
    __tablename__ = "post_draft"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'published', 'cancelled', 'superseded')", name="status_valid"
        ),
        sa.CheckConstraint("current_version > 0", name="version_positive"),
        # The ledger's questions: "latest draft of this session", "drafts of this session".
        sa.Index(
            "ix_post_draft_user_session_opened", "user_id", "session_id", "opened_message_seq"
        ),
        # At most one draft per session waits for "post / regenerate / cancel".
        sa.Index(
            "uq_post_draft_one_pending_per_session",
            "session_id",
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
        ),
        owner_key("post_draft"),
        same_owner_fk("post_draft", "session_id", "chat_session"),
        same_owner_fk("post_draft", "parent_draft_id", "post_draft", ondelete="SET NULL"),
    )

    id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: uuid.UUID = Field(sa_column=_owner())
    session_id: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    # The user message with the original request, and the one that opened this record
    # (the same, or a later "regenerate" after the previous draft was published).
    request_message_seq: int = Field(nullable=False)
    opened_message_seq: int = Field(nullable=False)
    parent_draft_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(sa.Uuid, nullable=True)
    )
    platform: str = Field(max_length=32, nullable=False)
    topic: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    topic_sealed: bytes | None = _sealed()
    context: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    context_sealed: bytes | None = _sealed()
    key_id: str | None = _key_id()
    with_image: bool = Field(default=False, nullable=False)
    status: str = Field(default=DraftStatus.PENDING, max_length=16, nullable=False)
    current_version: int = Field(default=1, nullable=False)
    created_at: datetime = Field(sa_column=_tz())
    updated_at: datetime = Field(sa_column=_tz())
    published_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))


class PostContent(SQLModel):
    """What a draft's version and a published post both hold: the text and the hashtags,
    each with its sealed copy (`key_id`), and the image. Declared by type (not as one
    `sa.Column`) so each table gets columns of its own."""

    text: str = Field(sa_type=sa.Text, nullable=False)
    text_sealed: bytes | None = Field(default=None, sa_type=sa.LargeBinary, nullable=True)
    key_id: str | None = Field(default=None, max_length=32, nullable=True)
    hashtags: list[str] = Field(
        default_factory=list,
        sa_type=JSONB,
        nullable=False,
        sa_column_kwargs={"server_default": sa.text("'[]'::jsonb")},
    )
    hashtags_sealed: bytes | None = Field(default=None, sa_type=sa.LargeBinary, nullable=True)
    image_id: uuid.UUID | None = Field(default=None, sa_type=sa.Uuid, nullable=True)


# The sealed columns of PostContent.
_CONTENT_SEALED = (
    sealed.SealedColumn("text", "text_sealed"),
    sealed.SealedColumn("hashtags", "hashtags_sealed", blank=list, kind="json"),
)


class PostDraftVersion(PostContent, table=True):
    __tablename__ = "post_draft_version"
    __table_args__ = (
        sa.CheckConstraint("version > 0", name="version_positive"),
        same_owner_fk("post_draft_version", "draft_id", "post_draft"),
        same_owner_fk("post_draft_version", "image_id", "stored_image", ondelete="SET NULL"),
    )

    draft_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    version: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    user_id: uuid.UUID = Field(sa_column=_owner())
    source_message_seq: int = Field(nullable=False)
    writer: str = Field(max_length=32, nullable=False)  # "builtin" | "openai"
    created_at: datetime = Field(sa_column=_tz())


class PublishedPost(PostContent, table=True):
    """One row per published draft: `draft_id` is unique, so a draft is published once.

    The row outlives its draft (and its conversation): it records what went out. Deleting
    them clears `draft_id` and `session_id`; the post keeps its owner.
    """

    __tablename__ = "published_post"
    __table_args__ = (
        sa.UniqueConstraint("draft_id"),
        sa.Index("ix_published_post_user_published", "user_id", "published_at", "id"),
        same_owner_fk("published_post", "draft_id", "post_draft", ondelete="SET NULL"),
        same_owner_fk("published_post", "session_id", "chat_session", ondelete="SET NULL"),
        same_owner_fk("published_post", "image_id", "stored_image", ondelete="SET NULL"),
    )

    id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid, primary_key=True))
    user_id: uuid.UUID = Field(sa_column=_owner())
    draft_id: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))
    session_id: str | None = Field(default=None, max_length=100, nullable=True)
    version: int = Field(nullable=False)
    platform: str = Field(max_length=32, nullable=False)
    publisher: str = Field(max_length=32, nullable=False)
    external_id: str | None = Field(default=None, max_length=500, nullable=True)
    published_at: datetime = Field(sa_column=_tz())


sealed.register(
    StoredImage,
    sealed.SealSpec(
        table="stored_image",
        columns=(sealed.SealedColumn("data", "data", kind="bytes"),),
        row_key=("id",),
    ),
)
sealed.register(
    PostDraft,
    sealed.SealSpec(
        table="post_draft",
        columns=(
            sealed.SealedColumn("topic", "topic_sealed"),
            sealed.SealedColumn("context", "context_sealed", blank=None),
        ),
        row_key=("id",),
    ),
)
sealed.register(
    PostDraftVersion,
    sealed.SealSpec(
        table="post_draft_version", columns=_CONTENT_SEALED, row_key=("draft_id", "version")
    ),
)
sealed.register(
    PublishedPost,
    sealed.SealSpec(table="published_post", columns=_CONTENT_SEALED, row_key=("id",)),
)
