"""Chat sessions: lookup, context, expiry. Services flush; the caller owns the transaction.

The chat turn itself is in `app.turns` (`opening`, `closing`).

Ownership lives here, in `owned_session`: every read of a session filters on its owner
(through `app.core.tenancy`), so another user's session looks exactly like a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations import trash
from app.conversations.context import HistoryMessage
from app.conversations.ids import is_well_formed, new_session_id
from app.conversations.models import AuditAction, ChatMessage, ChatSession, SessionStatus
from app.core.errors import InvalidInputError, NotFoundError
from app.core.tenancy import owned
from app.core.text import shorten
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column

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
    if not is_well_formed(session_id):
        return None
    stmt = owned(ChatSession, user_id).where(col(ChatSession.id) == session_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_owned_session(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> ChatSession:
    found = await owned_session(session=session, user_id=user_id, session_id=session_id)
    if found is None:
        raise NotFoundError("No conversation with this id.", code="session_not_found")
    return found


def open_message(
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    seq: int,
    sealed: bytes | None,
    key_id: str | None,
    plain: str = "",
) -> str:
    """A message's content read by a Core statement: `plain`, or the sealed copy opened."""
    content: str = open_column(
        keyring_of(session),
        ChatMessage,
        "content",
        plain=plain,
        sealed=sealed,
        key_id=key_id,
        user_id=user_id,
        row=(session_id, seq),
    )
    return content


# Read on every turn: built once (a statement built per call costs more CPU than its rows).
_CONTEXT_ROWS = sa.text(
    "SELECT seq, role, content, image_url, content_sealed, key_id FROM chat_message"
    " WHERE session_id = :session_id AND user_id = :user_id ORDER BY seq DESC LIMIT :limit"
)


async def load_context(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, limits: ContextLimits
) -> list[HistoryMessage]:
    """The most recent messages that fit the budget, oldest first. Reads at most N rows."""
    rows = (
        await session.execute(
            _CONTEXT_ROWS,
            {"session_id": session_id, "user_id": user_id, "limit": limits.max_messages},
        )
    ).all()
    return pick_context(
        rows,
        limits,
        lambda seq, sealed, key_id, plain: open_message(
            session, user_id, session_id, seq, sealed, key_id, plain
        ),
    )


def pick_context(
    rows: Iterable[Sequence[Any]],
    limits: ContextLimits,
    open_content: Callable[[int, bytes | None, str | None, str], str],
) -> list[HistoryMessage]:
    """From (seq, role, content, image_url, content_sealed, key_id) rows, newest first:
    those within the budget, oldest first, their content opened."""
    picked: list[HistoryMessage] = []
    budget = limits.max_chars
    for seq, role, plain, image_url, sealed, key_id in rows:
        content = open_content(seq, sealed, key_id, plain)
        if picked and len(content) > budget:
            break
        budget -= len(content)
        picked.append(HistoryMessage(seq=seq, role=role, content=content, image_url=image_url))
    picked.reverse()
    return picked


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
    rows = await session.execute(
        owned(ChatMessage, user_id)
        .where(col(ChatMessage.session_id) == session_id, col(ChatMessage.seq) > after_seq)
        .order_by(col(ChatMessage.seq))
        .limit(limit)
    )
    return rows.scalars().all()


async def delete_session_any_owner(
    *, session: AsyncSession, session_id: str, now: datetime, actor: trash.Actor
) -> bool:
    """Operators only: deletes a session of any user for good, with its messages and
    images, and records who did it in the owner's activity."""
    removed = await trash.remove(
        session=session,
        ids=[session_id],
        owner_id=None,
        now=now,
        actor=actor,
        action=AuditAction.ADMIN_DELETE,
    )
    return bool(removed)


@dataclass(frozen=True)
class SessionStats:
    active: int
    archived: int
    total: int
    messages: int
    users: int


async def session_stats(*, session: AsyncSession) -> SessionStats:
    """Whole-database counts for operators (admin and metrics only)."""
    row = (
        await session.execute(
            sa.text(
                """
                SELECT
                  (SELECT count(*) FROM chat_session WHERE status = 'active') AS active,
                  (SELECT count(*) FROM chat_session WHERE status = 'archived') AS archived,
                  (SELECT coalesce(sum(message_count), 0) FROM chat_session) AS messages,
                  (SELECT count(*) FROM app_user) AS users
                """
            )
        )
    ).one()
    return SessionStats(
        active=row.active,
        archived=row.archived,
        total=row.active + row.archived,
        messages=int(row.messages),
        users=row.users,
    )


@dataclass(frozen=True)
class SweepStats:
    runs: int
    archived: int
    last_finished_epoch: float | None


async def sweep_stats(*, session: AsyncSession) -> SweepStats:
    """The sweeper's record so far (metrics only)."""
    row = (
        await session.execute(
            sa.text(
                "SELECT count(*), coalesce(sum(archived_count), 0), "
                "extract(epoch FROM max(finished_at)) FROM sweep_run"
            )
        )
    ).one()
    return SweepStats(
        runs=row[0],
        archived=int(row[1]),
        last_finished_epoch=float(row[2]) if row[2] is not None else None,
    )
