"""Scheduled auth work: forgetting sign-ins that can never sign anyone in again, and telling
which sign-ins still sign someone in (the live-event streams ask, `app.events.tasks`)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.repository import SignInOperatorRepository
from app.core.db import unit_of_work

logger = logging.getLogger("app.auth")


async def purge_ended_sign_ins(
    *, sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    """Deletes sign-ins that can never sign anyone in again (ended, or past their expiry),
    in a transaction of its own, at once. The scheduled purge (`app.jobs.schedule`) does the
    same in batches, SIGN_IN_PURGE_AFTER_HOURS after they ended."""
    async with unit_of_work(sessionmaker) as session:
        return await SignInOperatorRepository(session).delete_dead(now)


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
        live = await SignInOperatorRepository(session).live_among(wanted, now, idle_seconds)
        return {str(i) for i in live}
