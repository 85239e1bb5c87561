"""The trash, deleting for good, and the audit trail of both.

Deleting a conversation moves it to the trash: status `trashed`, with the status it had
(`trashed_from`, what a restore brings back) and `purge_at`. Its share link ends there, for
good; nothing else changes, so a restore returns it with its messages, drafts, images,
title, pins and tags. Deleting for good removes the row (messages, drafts, turns and the
share link go by cascade) and the images its drafts and messages showed, except those a
published post still shows: a published post records what went out.

Every trash, restore, permanent delete, purge and admin delete leaves an `audit_event` row
naming who (the owner, a superuser, or nobody for the purge), what, when and from where.
The statements are in `app.conversations.repository`. Services flush; the caller owns
the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import AuditAction, AuditEvent, ChatSession, SessionStatus
from app.conversations.repository import (
    ConversationOperatorRepository,
    ConversationRepository,
    Removed,
)
from app.events.bus import EventBus, user_event

# What other domains do, in the same transaction, when conversations go to the trash (the
# share links end: `app.sharing.service`). They add themselves on import; `app.models`,
# which every composition root imports, imports them.
TrashListener = Callable[[AsyncSession, uuid.UUID, Sequence[str]], Awaitable[None]]
TRASH_LISTENERS: list[TrashListener] = []


def on_trashed(listener: TrashListener) -> TrashListener:
    """Calls `listener(session, user_id, session_ids)` whenever conversations are trashed."""
    if listener not in TRASH_LISTENERS:
        TRASH_LISTENERS.append(listener)
    return listener


ACTIVITY_PAGE_DEFAULT = 50
ACTIVITY_PAGE_MAX = 200


@dataclass(frozen=True)
class Actor:
    """Who asks: a signed-in user (the owner or a superuser) and the address they came from,
    or nobody (`user_id` None) for a background job."""

    user_id: uuid.UUID | None
    ip: str | None = None


SYSTEM = Actor(user_id=None)


def _changed(session: AsyncSession, user_id: uuid.UUID, session_id: str, change: str) -> None:
    EventBus.stage(session, user_event(user_id, "session", sessionId=session_id, change=change))


def _session_changed(session: AsyncSession, chat_session: ChatSession, change: str) -> None:
    """As `_changed`; a temporary conversation's changes reach no other device."""
    if not chat_session.temporary:
        _changed(session, chat_session.user_id, chat_session.id, change)


def record(
    session: AsyncSession,
    *,
    at: datetime,
    owner_id: uuid.UUID,
    actor: Actor,
    action: AuditAction,
    session_id: str,
    title: str,
) -> None:
    session.add(
        AuditEvent(
            at=at,
            user_id=owner_id,
            actor_id=actor.user_id,
            action=action,
            session_id=session_id,
            title=title[:200],
            ip=actor.ip[:64] if actor.ip else None,
        )
    )


async def trash(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    now: datetime,
    retention_days: int,
    actor: Actor,
) -> bool:
    """Moves the conversation to the trash; False if it already was there."""
    if chat_session.status == SessionStatus.TRASHED:
        return False
    chat_session.trashed_from = chat_session.status
    chat_session.status = SessionStatus.TRASHED
    chat_session.trashed_at = now
    chat_session.purge_at = now + timedelta(days=retention_days)
    # A conversation in the trash is shared no more; a restore does not bring the link back.
    for listener in TRASH_LISTENERS:
        await listener(session, chat_session.user_id, [chat_session.id])
    record(
        session,
        at=now,
        owner_id=chat_session.user_id,
        actor=actor,
        action=AuditAction.TRASH,
        session_id=chat_session.id,
        title=chat_session.title,
    )
    await session.flush()
    _session_changed(session, chat_session, "trashed")
    return True


async def untrash(
    *, session: AsyncSession, chat_session: ChatSession, now: datetime, actor: Actor
) -> bool:
    """Takes the conversation out of the trash, back to the status it had; False if it was
    not in the trash."""
    if chat_session.status != SessionStatus.TRASHED:
        return False
    chat_session.status = chat_session.trashed_from or SessionStatus.ARCHIVED
    chat_session.trashed_from = None
    chat_session.trashed_at = None
    chat_session.purge_at = None
    record(
        session,
        at=now,
        owner_id=chat_session.user_id,
        actor=actor,
        action=AuditAction.RESTORE,
        session_id=chat_session.id,
        title=chat_session.title,
    )
    await session.flush()
    _session_changed(session, chat_session, "restored")
    return True


Repository = ConversationRepository | ConversationOperatorRepository


async def delete_conversations(
    *,
    session: AsyncSession,
    repository: Repository,
    ids: Sequence[str],
    now: datetime,
    actor: Actor,
    action: AuditAction,
) -> list[Removed]:
    """The one way a conversation is deleted for good: the owner (from the trash, or at
    once), an operator, or the purge. The rows go with their images (the repository's
    delete), and each leaves an audit row and a `session` event for its owner's devices.
    `repository` says whose conversations `ids` may name: the owner's
    (`ConversationRepository`) or anyone's (`ConversationOperatorRepository`). Returns what
    was deleted."""
    removed = await repository.delete(ids)
    for item in removed:
        record(
            session,
            at=now,
            owner_id=item.user_id,
            actor=actor,
            action=action,
            session_id=item.id,
            title=item.title,
        )
        _changed(session, item.user_id, item.id, "deleted")
    await session.flush()
    return removed


# --------------------------------------------------------------------------- activity


@dataclass(frozen=True)
class ActivityPage:
    items: list[AuditEvent]
    next_before: int | None


async def list_activity(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    limit: int = ACTIVITY_PAGE_DEFAULT,
    before: int | None = None,
) -> ActivityPage:
    """One user's audit trail, newest first."""
    rows = await ConversationRepository(session, user_id).activity(limit=limit + 1, before=before)
    return _page(rows, limit)


async def list_all_activity(
    *, session: AsyncSession, limit: int = ACTIVITY_PAGE_DEFAULT, before: int | None = None
) -> ActivityPage:
    """Everyone's audit trail, newest first (superusers only)."""
    rows = await ConversationOperatorRepository(session).activity(limit=limit + 1, before=before)
    return _page(rows, limit)


def _page(rows: list[AuditEvent], limit: int) -> ActivityPage:
    items = rows[:limit]
    next_before = items[-1].id if len(rows) > limit and items else None
    return ActivityPage(items=items, next_before=next_before)
