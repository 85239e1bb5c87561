"""Scheduled auth work: forgetting sign-ins that can never sign anyone in again."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.auth.models import SignIn


async def purge_ended_sign_ins(
    *, sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    """Deletes sign-ins that can never sign anyone in again (ended, or past their expiry),
    in a transaction of its own. Run with every sweep (`app.conversations.tasks`)."""
    async with sessionmaker() as session, session.begin():
        result = await session.execute(
            sa.delete(SignIn).where(
                sa.or_(col(SignIn.ended_at).is_not(None), col(SignIn.expires_at) < now)
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)
