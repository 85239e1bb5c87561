"""Retention: a user's conversations idle longer than their setting go to the trash.

The setting is 30, 90, 180 or 365 days after the last activity, off by default;
RETENTION_MAX_DAYS, when set, applies to everyone (a user can choose less, never more).
Pinned conversations are exempt. Conversations go to the trash, where Undo (restore) works
until the trash purge deletes them TRASH_RETENTION_DAYS later (RETENTION_SKIP_TRASH: they
are deleted for good at once, audit action `purge`); each one leaves an
`audit_event` (action `trash`, no actor) and each run that moved any a `retention_run`
row with its count. It runs as a scheduled run of the job queue (`app.jobs.schedule`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import trash
from app.conversations.models import AuditAction, RetentionRun
from app.conversations.repository import (
    ConversationRepository,
    RetentionOperatorRepository,
    RetentionRepository,
)
from app.conversations.schemas import RetentionOut, RetentionRunOut
from app.core.db import unit_of_work
from app.core.errors import InvalidInputError
from app.events.bus import EventBus

CHOICES = (30, 90, 180, 365)
RUNS_SHOWN = 20


def effective_days(chosen: int | None, maximum: int | None) -> int | None:
    """The retention that applies: the user's choice, capped by the operator's maximum."""
    if chosen is None:
        return maximum
    if maximum is None:
        return chosen
    return min(chosen, maximum)


def check_choice(days: int | None) -> None:
    if days is not None and days not in CHOICES:
        raise InvalidInputError(
            "Retention is off (null) or one of 30, 90, 180 and 365 days.",
            code="invalid_retention",
        )


def cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


async def preview(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    days: int | None,
    maximum: int | None,
    now: datetime,
) -> int:
    """How many conversations the setting `days` would delete now."""
    check_choice(days)
    applied = effective_days(days, maximum)
    if applied is None:
        return 0
    return await RetentionRepository(session, user_id).count_due(cutoff(now, applied))


async def setting(session: AsyncSession, user_id: uuid.UUID) -> int | None:
    return await RetentionRepository(session, user_id).setting()


async def choose(session: AsyncSession, user_id: uuid.UUID, days: int | None) -> None:
    check_choice(days)
    await RetentionRepository(session, user_id).set_setting(days)


async def runs_of(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int | None = RUNS_SHOWN
) -> Sequence[RetentionRun]:
    """The user's runs that moved any, newest first: the latest `limit` (None: all)."""
    return await RetentionRepository(session, user_id).runs(limit=limit)


async def standing(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    maximum: int | None,
    runs: int | None = RUNS_SHOWN,
) -> RetentionOut:
    """The user's setting, the operator's maximum, what applies, and the latest `runs`
    runs (None: every one) with their counts."""
    days = await setting(session, user_id)
    return RetentionOut(
        days=days,
        max_days=maximum,
        effective_days=effective_days(days, maximum),
        runs=[
            RetentionRunOut.model_validate(r) for r in await runs_of(session, user_id, limit=runs)
        ],
    )


async def all_runs(session: AsyncSession, *, limit: int) -> Sequence[RetentionRun]:
    return await RetentionOperatorRepository(session).runs(limit=limit)


async def apply_retention(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    maximum: int | None,
    trash_days: int,
    batch_size: int,
    skip_trash: bool = False,
    bus: EventBus | None = None,
) -> int:
    """One run for every user it applies to: moves their due conversations to the trash
    (a transaction per batch) and records the count; returns how many in all."""
    async with sessionmaker() as session:
        users = await RetentionOperatorRepository(session).users(everyone=maximum is not None)
    total = 0
    for user_id, chosen in users:
        days = effective_days(chosen, maximum)
        if days is None:
            continue
        moved = 0
        while True:
            async with unit_of_work(sessionmaker, bus) as session:
                repo = RetentionRepository(session, user_id)
                due = await repo.due(cutoff(now, days), batch=batch_size)
                if skip_trash:
                    await trash.delete_conversations(
                        session=session,
                        repository=ConversationRepository(session, user_id),
                        ids=[c.id for c in due],
                        now=now,
                        actor=trash.SYSTEM,
                        action=AuditAction.PURGE,
                    )
                for chat_session in due if not skip_trash else ():
                    await trash.trash(
                        session=session,
                        chat_session=chat_session,
                        now=now,
                        retention_days=trash_days,
                        actor=trash.SYSTEM,
                    )
                moved += len(due)
                last = len(due) < batch_size
                if last and moved:
                    await repo.record_run(at=now, days=days, trashed=moved)
            if last:
                break
        total += moved
    return total
