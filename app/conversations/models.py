"""Chat sessions and their append-only messages.

A message is one row, written once. A turn appends two rows and updates one session row,
so its cost does not grow with the length of the conversation.

A conversation is a tree: every message names its parent (`parent_seq`, null for a first
message), and the session names the leaf of its active branch (`head_seq`). Editing a
message or regenerating a reply adds a sibling; nothing is overwritten. `seq` stays the
gapless order in which messages were stored, across all branches, so a parent is always
older than its children. `depth` (1 for a first message) is the length of the path from
the root to the message: the active path's length is the head's depth.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlmodel import Field, SQLModel

from app.core.db import metadata as _metadata  # noqa: F401  (naming convention first)
from app.core.tenancy import owner_key, same_owner_fk
from app.encryption import sealed

# Full-text search uses the 'simple' configuration: lower-cased words, no stemming and no
# stop words, so it works the same for text in any language (see docs/api.md, History).
SEARCH_CONFIG = "simple"


def _search_vector(name: str, source: str) -> sa.Column[Any]:
    """A stored generated tsvector column. It lives in the table but is not mapped, so
    loading a row never reads it; queries use `Model.__table__.c.<name>`."""
    return sa.Column(
        name,
        TSVECTOR,
        sa.Computed(f"to_tsvector('{SEARCH_CONFIG}'::regconfig, {source})", persisted=True),
        nullable=True,
    )


def _symbols_column(name: str) -> sa.Column[Any]:
    """An unmapped array of the symbols a text holds, filled by a trigger."""
    return sa.Column(name, ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]"))


class SessionStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    TRASHED = "trashed"


class AuditAction(StrEnum):
    TRASH = "trash"
    RESTORE = "restore"
    DELETE = "delete"  # permanent, by the owner
    PURGE = "purge"  # permanent, by the trash purge after TRASH_RETENTION_DAYS
    ADMIN_DELETE = "admin_delete"


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


def _tz(nullable: bool = False, **kwargs: Any) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, **kwargs)


def _sealed() -> Any:
    """The sealed copy of a text column (ENCRYPTION_KEYS set); NULL for plaintext rows."""
    return Field(default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True))


def _key_id() -> Any:
    """Which key sealed the row's content; NULL: plaintext (encryption off, or older)."""
    return Field(default=None, sa_column=sa.Column(sa.String(32), nullable=True))


class ChatSession(SQLModel, table=True):
    __tablename__ = "chat_session"
    __table_args__ = (
        sa.CheckConstraint("status IN ('active', 'archived', 'trashed')", name="status_valid"),
        # A trashed session knows where it came from and when the purge takes it.
        sa.CheckConstraint(
            "(status = 'trashed') = (trashed_at IS NOT NULL AND purge_at IS NOT NULL)",
            name="trash_consistent",
        ),
        # A user's sessions, pinned first, then newest activity (history list, keyset
        # pagination).
        sa.Index(
            "ix_chat_session_user_activity",
            "user_id",
            sa.text("pinned DESC"),
            sa.text("last_activity_at DESC"),
            "id",
        ),
        # Only active sessions, oldest activity first: what the sweeper scans.
        sa.Index(
            "ix_chat_session_active_activity",
            "last_activity_at",
            postgresql_where=sa.text("status = 'active'"),
        ),
        # Temporary conversations, oldest activity first: what the sweep deletes.
        sa.Index(
            "ix_chat_session_temporary_activity",
            "last_activity_at",
            postgresql_where=sa.text("temporary"),
        ),
        # History filtered by status (active, archived, trashed), in history order.
        sa.Index(
            "ix_chat_session_user_status_activity",
            "user_id",
            "status",
            sa.text("pinned DESC"),
            sa.text("last_activity_at DESC"),
            "id",
        ),
        # History filtered by tag (tags are lower-case; GIN over uuid needs btree_gin).
        sa.Index("ix_chat_session_user_tags", "user_id", "tags", postgresql_using="gin"),
        # What the trash purge scans: trashed sessions, soonest purge first.
        sa.Index(
            "ix_chat_session_trash_purge",
            "purge_at",
            postgresql_where=sa.text("status = 'trashed'"),
        ),
        # Title search within one user's sessions (GIN over uuid needs btree_gin).
        _search_vector("title_tsv", "title"),
        sa.Index("ix_chat_session_user_title_tsv", "user_id", "title_tsv", postgresql_using="gin"),
        # Substring search (Chinese, Japanese, emoji) with ILIKE, through pg_trgm.
        sa.Index(
            "ix_chat_session_user_title_trgm",
            "user_id",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
        # What the tables that belong to a conversation point at: (session, owner), so
        # the database refuses a row whose user is not the conversation's owner.
        owner_key("chat_session"),
    )
    __mapper_args__ = {"exclude_properties": ["title_tsv"]}

    id: str = Field(primary_key=True, max_length=100)
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    title: str = Field(default="New conversation", max_length=200, nullable=False)
    title_sealed: bytes | None = _sealed()
    key_id: str | None = _key_id()
    status: str = Field(default=SessionStatus.ACTIVE, max_length=16, nullable=False)
    created_at: datetime = Field(sa_column=_tz())
    last_activity_at: datetime = Field(sa_column=_tz())
    archived_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    # In the trash: since when, the status it had before (what a restore brings back),
    # and when the purge deletes it for good.
    trashed_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    trashed_from: str | None = Field(default=None, max_length=16, nullable=True)
    purge_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    # Messages stored, across all branches: the last `seq` (the next message takes +1).
    message_count: int = Field(default=0, nullable=False)
    # The leaf of the active branch; null only while the conversation holds no message.
    head_seq: int | None = Field(default=None, nullable=True)
    # Where an imported conversation came from (`chatgpt`, `claude`, `openwebui`,
    # `chatkeep`); null for one started here.
    imported_from: str | None = Field(default=None, max_length=16, nullable=True)
    # The name of the API key a conversation was started with (`POST /v1/chat/completions`);
    # null for one started anywhere else.
    api_client: str | None = Field(default=None, max_length=100, nullable=True)
    pinned: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    # A temporary conversation: in no history list, search, export of everything, share or
    # other device's `session` events; the sweep deletes it for good once idle past the TTL.
    temporary: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default="false")
    )
    # Lower-case, unique, in the order given (see `app.conversations.tags`).
    tags: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(
            ARRAY(sa.String(32)), nullable=False, server_default=sa.text("'{}'::varchar[]")
        ),
    )
    # The model that answers here (an id of GET /api/models); null: the default model.
    model: str | None = Field(default=None, max_length=100, nullable=True)
    # Token usage of the model's replies, summed by the turns that close here.
    prompt_tokens: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    completion_tokens: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )


class ChatMessage(SQLModel, table=True):
    __tablename__ = "chat_message"
    __table_args__ = (
        sa.CheckConstraint("role IN ('user', 'assistant', 'system')", name="role_valid"),
        sa.CheckConstraint("seq > 0", name="seq_positive"),
        # A parent is older than its children (so the tree has no cycle), in the same
        # conversation (the key below).
        sa.CheckConstraint("parent_seq < seq", name="parent_older"),
        sa.CheckConstraint("depth > 0", name="depth_positive"),
        sa.ForeignKeyConstraint(
            ["session_id", "parent_seq"],
            ["chat_message.session_id", "chat_message.seq"],
            name="fk_chat_message_parent_seq_chat_message",
            ondelete="CASCADE",
        ),
        # A message's children (versions, the newest leaf under a message).
        sa.Index("ix_chat_message_session_parent", "session_id", "parent_seq"),
        # Content search within one user's messages (GIN over uuid needs btree_gin).
        _search_vector("content_tsv", "content"),
        sa.Index(
            "ix_chat_message_user_content_tsv", "user_id", "content_tsv", postgresql_using="gin"
        ),
        sa.Index(
            "ix_chat_message_user_content_trgm",
            "user_id",
            "content",
            postgresql_using="gin",
            postgresql_ops={"content": "gin_trgm_ops"},
        ),
        # The symbols (emoji, ...) a message holds, filled by a trigger (migration 0027):
        # a search term of symbols is looked up here (`app.conversations.symbols`). Only
        # messages holding one are indexed.
        _symbols_column("content_symbols"),
        sa.Index(
            "ix_chat_message_user_content_symbols",
            "user_id",
            "content_symbols",
            postgresql_using="gin",
            postgresql_where=sa.text("content_symbols <> '{}'::text[]"),
        ),
        same_owner_fk("chat_message", "session_id", "chat_session"),
        # The stored path a client of /v1 resends (`app.conversations.paths`).
        sa.Index(
            "ix_chat_message_user_path_hash",
            "user_id",
            "path_hash",
            postgresql_where=sa.text("path_hash IS NOT NULL"),
        ),
    )
    __mapper_args__ = {"exclude_properties": ["content_tsv", "content_symbols"]}

    session_id: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    seq: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    # The message this one follows (same conversation); null for a first message.
    parent_seq: int | None = Field(default=None, nullable=True)
    # 1 + the parent's depth: the number of messages from the root to this one.
    depth: int = Field(default=1, nullable=False)
    role: str = Field(max_length=16, nullable=False)
    content: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    content_sealed: bytes | None = _sealed()
    key_id: str | None = _key_id()
    image_url: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    meta: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=sa.Column(
            "metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
    )
    created_at: datetime = Field(sa_column=_tz())
    # The keyed hash chained along the path from the root to this message
    # (`app.conversations.paths`); null for system messages and rows written before it.
    path_hash: bytes | None = Field(
        default=None, sa_column=sa.Column(sa.LargeBinary, nullable=True)
    )


class PathSummary(SQLModel, table=True):
    """What the model wrote about the start of a long conversation: a summary of the path
    from the root through the message `through_seq`.

    The path from the root to a message is unique in the tree, so a summary through `X` is
    valid for every branch that passes through `X` (one row per message, kept for reuse).
    A turn whose context budget drops the oldest messages of its path sends the newest
    summary through one of the dropped ones in their place (`app/summaries`).
    """

    __tablename__ = "path_summary"
    __table_args__ = (
        sa.CheckConstraint("through_seq > 0", name="through_seq_positive"),
        # Goes with its conversation (deleted, purged, or the account closed).
        same_owner_fk("path_summary", "session_id", "chat_session"),
    )

    session_id: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    through_seq: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    text: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    text_sealed: bytes | None = _sealed()
    key_id: str | None = _key_id()
    # The model that wrote it (an id of GET /api/models).
    model: str | None = Field(default=None, max_length=100, nullable=True)
    created_at: datetime = Field(sa_column=_tz())


class SweepRun(SQLModel, table=True):
    """One row per sweep that ran: proof of exactly-once, and what /metrics reports."""

    __tablename__ = "sweep_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(sa_column=_tz())
    finished_at: datetime | None = Field(default=None, sa_column=_tz(nullable=True))
    archived_count: int = Field(default=0, nullable=False)
    trigger: str = Field(max_length=16, nullable=False)  # "schedule" | "manual"
    runner: str = Field(max_length=200, nullable=False)  # host:pid that ran it


class AuditEvent(SQLModel, table=True):
    """Who trashed, restored or deleted which conversation, when, and from where.

    Rows outlive the conversation they name (no foreign key on `session_id`), and belong to
    the conversation's owner (`user_id`); `actor_id` is who did it: the owner, a superuser,
    or nobody for the trash purge.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.CheckConstraint(
            "action IN ('trash', 'restore', 'delete', 'purge', 'admin_delete')",
            name="action_valid",
        ),
        # A user's activity, newest first (ids grow with time); everyone's uses the key.
        sa.Index("ix_audit_event_user_id", "user_id", sa.text("id DESC")),
    )

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, primary_key=True))
    at: datetime = Field(sa_column=_tz())
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    actor_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )
    action: str = Field(max_length=16, nullable=False)
    session_id: str = Field(max_length=100, nullable=False)
    title: str = Field(max_length=200, nullable=False)
    title_sealed: bytes | None = _sealed()
    key_id: str | None = _key_id()
    ip: str | None = Field(default=None, max_length=64, nullable=True)


class RetentionRun(SQLModel, table=True):
    """What one run of a user's retention setting did: how many conversations it moved to
    the trash, and when. Counts only; the trail (`audit_event`, action `trash`, no actor)
    names each conversation."""

    __tablename__ = "retention_run"
    __table_args__ = (sa.Index("ix_retention_run_user_id", "user_id", sa.text("id DESC")),)

    id: int | None = Field(default=None, sa_column=sa.Column(sa.BigInteger, primary_key=True))
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    at: datetime = Field(sa_column=_tz())
    days: int = Field(nullable=False)
    trashed: int = Field(nullable=False)


# A message's title row in `message_search_token`: messages start at seq 1.
TITLE_SEQ = 0


class MessageSearchToken(SQLModel, table=True):
    """The blind index of one sealed message (or, at `message_seq` 0, of a conversation's
    title): keyed hashes of its words, their prefixes and CJK/emoji grams
    (`app.encryption.blind_index`). One row per message keeps a turn's cost to one
    insert per message; the GIN index answers "which of this user's messages hold all
    these tokens"."""

    __tablename__ = "message_search_token"
    __table_args__ = (
        same_owner_fk("message_search_token", "session_id", "chat_session"),
        sa.Index(
            "ix_message_search_token_user_tokens", "user_id", "tokens", postgresql_using="gin"
        ),
    )

    session_id: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    message_seq: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    user_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False
        )
    )
    # The key whose index key made the tokens (rotation rebuilds rows on older keys).
    key_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    tokens: list[bytes] = Field(
        default_factory=list, sa_column=sa.Column(ARRAY(sa.LargeBinary), nullable=False)
    )


sealed.register(
    ChatSession,
    sealed.SealSpec(
        table="chat_session",
        columns=(sealed.SealedColumn("title", "title_sealed"),),
        row_key=("id",),
    ),
)
sealed.register(
    ChatMessage,
    sealed.SealSpec(
        table="chat_message",
        columns=(sealed.SealedColumn("content", "content_sealed"),),
        row_key=("session_id", "seq"),
    ),
)
sealed.register(
    PathSummary,
    sealed.SealSpec(
        table="path_summary",
        columns=(sealed.SealedColumn("text", "text_sealed"),),
        row_key=("session_id", "through_seq"),
    ),
)
# Audit rows have no id before they are written: bound to the conversation they name.
sealed.register(
    AuditEvent,
    sealed.SealSpec(
        table="audit_event",
        columns=(sealed.SealedColumn("title", "title_sealed"),),
        row_key=("session_id",),
    ),
)
