"""Scheduled auth work: forgetting sign-ins that can never sign anyone in again, and telling
which sign-ins still sign someone in (the live-event streams ask, `app.events.tasks`)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.auth.db import live_filter
from app.auth.models import SignIn
from app.core.db import unit_of_work

logger = logging.getLogger("app.auth")


async def purge_ended_sign_ins(
    *, sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    """Deletes sign-ins that can never sign anyone in again (ended, or past their expiry),
    in a transaction of its own. Run with every sweep (`app.conversations.tasks`)."""
    async with unit_of_work(sessionmaker) as session:
        result = await session.execute(
            sa.delete(SignIn).where(
                sa.or_(col(SignIn.ended_at).is_not(None), col(SignIn.expires_at) < now)
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)


async def live_sign_ins(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    ids: set[str],
    now: datetime,
    idle_seconds: int,
) -> set[str]:
    """Which of these sign-ins still sign someone in (one query, whatever their number)."""
    wanted = [uuid.UUID(i) for i in ids]
    async with sessionmaker() as session:
        rows = await session.execute(
            sa.select(col(SignIn.id)).where(
                col(SignIn.id).in_(wanted), live_filter(now, idle_seconds)
            )
        )
        return {str(row[0]) for row in rows}
