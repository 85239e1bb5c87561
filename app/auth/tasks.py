"""Scheduled auth work: forgetting sign-ins that can never sign anyone in again, and
ending the live-event streams of sign-ins that ended."""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.auth.db import live_filter
from app.auth.models import SignIn
from app.core.clock import Clock
from app.core.periodic import running_every
from app.events.bus import Hub

logger = logging.getLogger("app.auth")


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


async def sign_out_ended_streams(
    *,
    hub: Hub,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    idle_seconds: int,
) -> int:
    """Ends this process's live-event streams whose sign-in ended (signed out here or on
    another device, by a password change or reset, an account deletion, or expiry)."""
    open_ids = hub.open_sign_ins()
    if not open_ids:
        return 0
    live = await live_sign_ins(
        sessionmaker=sessionmaker, ids=open_ids, now=now, idle_seconds=idle_seconds
    )
    return hub.sign_out(open_ids - live)


def running_stream_sign_in_check(
    *,
    hub: Hub,
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    idle_seconds: int,
    interval_seconds: float,
) -> AbstractAsyncContextManager[None]:
    async def check() -> None:
        ended = await sign_out_ended_streams(
            hub=hub, sessionmaker=sessionmaker, now=clock.now(), idle_seconds=idle_seconds
        )
        if ended:
            logger.info("ended %d live-event streams whose sign-in ended", ended)

    return running_every(
        interval_seconds, check, what="sign-in check of open streams", logger=logger
    )
