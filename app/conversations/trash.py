"""The trash, deleting for good, and the audit trail of both.

Deleting a conversation moves it to the trash: status `trashed`, with the status it had
(`trashed_from`, what a restore brings back) and `purge_at`. Its share link ends there, for
good; nothing else changes, so a restore returns it with its messages, drafts, images,
title, pins and tags. Deleting for good removes the row (messages, drafts, turns and the
share link go by cascade) and the images its drafts and messages showed, except those a
published post still shows: a published post records what went out.

Every trash, restore, permanent delete, purge and admin delete leaves an `audit_event` row
naming who (the owner, a superuser, or nobody for the purge), what, when and from where.
Services flush; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations.models import AuditAction, AuditEvent, ChatSession, SessionStatus
from app.core.tenancy import owned, owned_by
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column
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

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_audit = AuditEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Actor:
    """Who asks: a signed-in user (the owner or a superuser) and the address they came from,
    or nobody (`user_id` None) for a background job."""

    user_id: uuid.UUID | None
    ip: str | None = None


SYSTEM = Actor(user_id=None)


@dataclass(frozen=True)
class Removed:
    id: str
    user_id: uuid.UUID
    title: str


def _changed(session: AsyncSession, user_id: uuid.UUID, session_id: str, change: str) -> None:
    EventBus.stage(session, user_event(user_id, "session", sessionId=session_id, change=change))


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
    _changed(session, chat_session.user_id, chat_session.id, "trashed")
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
    _changed(session, chat_session.user_id, chat_session.id, "restored")
    return True


# The images a conversation showed: its drafts' versions and its messages' image URLs.
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_DELETE_IMAGES = sa.text(
    f"""
    DELETE FROM stored_image AS i
    WHERE i.id IN (
        SELECT v.image_id FROM post_draft_version AS v
        JOIN post_draft AS d ON d.id = v.draft_id
        WHERE d.session_id = ANY(:ids) AND v.image_id IS NOT NULL
        UNION
        SELECT substring(m.image_url FROM '^/api/images/({_UUID})$')::uuid
        FROM chat_message AS m
        WHERE m.session_id = ANY(:ids) AND m.image_url ~ '^/api/images/{_UUID}$'
    )
    AND i.user_id IN (SELECT s.user_id FROM chat_session AS s WHERE s.id = ANY(:ids))
    AND NOT EXISTS (SELECT 1 FROM published_post AS p WHERE p.image_id = i.id)
    """  # noqa: S608  (only a constant pattern is formatted in)
).bindparams(sa.bindparam("ids", type_=ARRAY(sa.String)))


async def remove(
    *,
    session: AsyncSession,
    ids: Sequence[str],
    owner_id: uuid.UUID | None,
    now: datetime,
    actor: Actor,
    action: AuditAction,
) -> list[Removed]:
    """Deletes the conversations for good, with their images, and records it. `owner_id`
    None is for operators and the purge: any owner. Returns what was deleted."""
    if not ids:
        return []
    wanted = list(dict.fromkeys(ids))
    s = _sessions.c
    # The owner's sessions; operators and the purge (no owner) reach every user's.
    stmt = owned(_sessions, owner_id, s.id) if owner_id is not None else sa.select(s.id)
    # Lock first, so the images and the rows go together.
    found = (
        (
            await session.execute(
                stmt.where(s.id == sa.any_(sa.cast(wanted, ARRAY(sa.String))))
                .order_by(s.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    if not found:
        return []
    await session.execute(_DELETE_IMAGES, {"ids": list(found)})
    rows = (
        await session.execute(
            sa.delete(_sessions)
            .where(s.id == sa.any_(sa.cast(list(found), ARRAY(sa.String))))
            .returning(s.id, s.user_id, s.title, s.title_sealed, s.key_id)
        )
    ).all()
    keyring = keyring_of(session)
    removed = [
        Removed(
            id=r.id,
            user_id=r.user_id,
            title=open_column(
                keyring,
                ChatSession,
                "title",
                plain=r.title,
                sealed=r.title_sealed,
                key_id=r.key_id,
                user_id=r.user_id,
                row=(r.id,),
            ),
        )
        for r in rows
    ]
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
    user_id: uuid.UUID | None,
    limit: int = ACTIVITY_PAGE_DEFAULT,
    before: int | None = None,
) -> ActivityPage:
    """The audit trail, newest first: one user's (`user_id`), or everyone's (None, for
    superusers only)."""
    conds: list[Any] = []
    if user_id is not None:
        conds.append(owned_by(AuditEvent, user_id))
    if before is not None:
        conds.append(col(AuditEvent.id) < before)
    rows = (
        (
            await session.execute(
                sa.select(AuditEvent)
                .where(*conds)
                .order_by(col(AuditEvent.id).desc())
                .limit(limit + 1)
            )
        )
        .scalars()
        .all()
    )
    items = list(rows[:limit])
    next_before = items[-1].id if len(rows) > limit and items else None
    return ActivityPage(items=items, next_before=next_before)
