"""The monitoring figures: is the database there, and the gauges read from it."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.conversations import service as conversations
from app.core import metrics

logger = logging.getLogger("app.health")

HEALTH_TIMEOUT_SECONDS = 3.0


async def database_is_up(*, engine: AsyncEngine) -> bool:
    """Whether `SELECT 1` answers within HEALTH_TIMEOUT_SECONDS."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return False
    return True


async def refresh_database_gauges(*, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Sets the conversation and sweeper gauges from the database. When the database is
    down or slow they keep their last values, so the process metrics are still served."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS), sessionmaker() as session:
            stats = await conversations.session_stats(session=session)
            sweeps = await conversations.sweep_stats(session=session)
        metrics.SESSIONS.labels("active").set(stats.active)
        metrics.SESSIONS.labels("archived").set(stats.archived)
        metrics.MESSAGES.set(stats.messages)
        metrics.USERS.set(stats.users)
        metrics.SWEEPER_RUNS.set(sweeps.runs)
        metrics.SWEEPER_ARCHIVED.set(float(sweeps.archived))
        if sweeps.last_finished_epoch is not None:
            metrics.SWEEPER_LAST_RUN.set(sweeps.last_finished_epoch)
    except Exception as exc:
        logger.warning("metrics: database figures unavailable: %s", exc)
