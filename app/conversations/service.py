"""Chat sessions: lookup, context, expiry. Services flush; the caller owns the transaction.

The chat turn itself is in `app.turns` (`opening`, `closing`).

Ownership lives in `owned_session`: every read of a session goes through the owner's
`ConversationRepository`, so another user's session looks exactly like a missing one.
`open_message` (the turn's prebuilt statements open content with it) lives in the
repository and is named here for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations import trash
from app.conversations.context import HistoryMessage
from app.conversations.ids import new_session_id
from app.conversations.models import AuditAction, ChatMessage, ChatSession, SessionStatus
from app.conversations.repository import (
    ConversationOperatorRepository,
    ConversationRepository,
)
from app.conversations.repository import SessionStats as SessionStats
from app.conversations.repository import SweepStats as SweepStats
from app.conversations.repository import open_message as open_message
from app.core.errors import InvalidInputError, NotFoundError
from app.core.text import shorten

TITLE_MAX_CHARS = 80
DEFAULT_TITLE = "New conversation"


@dataclass(frozen=True)
class ContextLimits:
    max_messages: int
    max_chars: int


def title_from_message(text: str) -> str:
    words = " ".join(text.split())
    if not words:
        return DEFAULT_TITLE
    return shorten(words, TITLE_MAX_CHARS)


def is_expired(chat_session: ChatSession, *, now: datetime, ttl_seconds: int) -> bool:
    return chat_session.last_activity_at < now - timedelta(seconds=ttl_seconds)


def expires_at(*, status: str, last_activity_at: datetime, ttl_seconds: int) -> datetime | None:
    """When an active session is archived if nothing more is said; None when not active."""
    if status != SessionStatus.ACTIVE:
        return None
    return last_activity_at + timedelta(seconds=ttl_seconds)


async def owned_session(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, for_update: bool = False
) -> ChatSession | None:
    """The one place a session is looked up: by id AND owner, or not at all."""
    return await ConversationRepository(session, user_id).get(session_id, for_update=for_update)


async def get_owned_session(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> ChatSession:
    found = await owned_session(session=session, user_id=user_id, session_id=session_id)
    if found is None:
        raise NotFoundError("No conversation with this id.", code="session_not_found")
    return found


async def load_context(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, limits: ContextLimits
) -> list[HistoryMessage]:
    """The most recent messages that fit the budget, oldest first. Reads at most N rows."""
    newest = await ConversationRepository(session, user_id).newest_messages(
        session_id, limits.max_messages
    )
    return pick_context(
        ((m.seq, m.role, m.content, m.image_url, None, None) for m in newest),
        limits,
        lambda seq, sealed, key_id, plain: plain,
    )


def pick_context(
    rows: Iterable[Sequence[Any]],
    limits: ContextLimits,
    open_content: Callable[[int, bytes | None, str | None, str], str],
) -> list[HistoryMessage]:
    """From (seq, role, content, image_url, content_sealed, key_id) rows, newest first:
    those within the budget, oldest first, their content opened."""
    return fit_path(rows, limits, open_content).messages


@dataclass(frozen=True)
class FittedPath:
    """A path fitted to the context budget: the newest messages that fit, oldest first,
    and the newest message the budget drops (None: nothing of the path is dropped)."""

    messages: list[HistoryMessage]
    dropped_through: int | None


def fit_path(
    rows: Iterable[Sequence[Any]],
    limits: ContextLimits,
    open_content: Callable[[int, bytes | None, str | None, str], str],
) -> FittedPath:
    """From rows of a path, newest first: (seq, role, content, image_url, content_sealed,
    key_id[, parent_seq]), the newest within `limits` (at least one). The path has no gap,
    so what is dropped is everything above the oldest message kept: its parent and up
    (known only when rows carry `parent_seq`)."""
    picked: list[HistoryMessage] = []
    budget = limits.max_chars
    parent: int | None = None
    for row in rows:
        if len(picked) >= limits.max_messages:
            break
        seq, role, plain, image_url, sealed, key_id = row[:6]
        content = open_content(seq, sealed, key_id, plain)
        if picked and len(content) > budget:
            break
        budget -= len(content)
        picked.append(HistoryMessage(seq=seq, role=role, content=content, image_url=image_url))
        parent = row[6] if len(row) > 6 else None
    picked.reverse()
    return FittedPath(messages=picked, dropped_through=parent)


async def archive_session(*, chat_session: ChatSession, now: datetime) -> None:
    chat_session.status = SessionStatus.ARCHIVED
    chat_session.archived_at = now


def new_session(*, user_id: uuid.UUID, first_message: str, now: datetime) -> ChatSession:
    return ChatSession(
        id=new_session_id(now),
        user_id=user_id,
        title=title_from_message(first_message),
        status=SessionStatus.ACTIVE,
        created_at=now,
        last_activity_at=now,
        message_count=0,
    )


def validate_user_message(text: str, *, max_chars: int) -> str:
    if not text or not text.strip():
        raise InvalidInputError("The message is empty.", code="empty_message")
    if len(text) > max_chars:
        raise InvalidInputError(
            f"The message is {len(text)} characters long; the limit is {max_chars}.",
            code="message_too_long",
        )
    return text


async def list_messages(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, after_seq: int, limit: int
) -> Sequence[ChatMessage]:
    return await ConversationRepository(session, user_id).messages_after(
        session_id, after_seq=after_seq, limit=limit
    )


async def delete_session_any_owner(
    *, session: AsyncSession, session_id: str, now: datetime, actor: trash.Actor
) -> bool:
    """Operators only: deletes a session of any user for good, with its messages and
    images, and records who did it in the owner's activity."""
    removed = await trash.delete_conversations(
        session=session,
        repository=ConversationOperatorRepository(session),
        ids=[session_id],
        now=now,
        actor=actor,
        action=AuditAction.ADMIN_DELETE,
    )
    return bool(removed)


async def session_stats(*, session: AsyncSession) -> SessionStats:
    """Whole-database counts for operators (admin and metrics only)."""
    return await ConversationOperatorRepository(session).stats()


async def sweep_stats(*, session: AsyncSession) -> SweepStats:
    """The sweeper's record so far (metrics only)."""
    return await ConversationOperatorRepository(session).sweep_stats()
