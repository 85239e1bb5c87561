"""The monitoring figures: is the database there, and the gauges read from it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

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


class DatabaseGauges:
    """The whole-database gauges, read at most once per `refresh_seconds` per process.

    Counting every session and user scans whole tables; scrapes (and anyone holding the
    metrics token) should not be able to make that happen more often than this. Scrapes
    arriving together wait for the one read in progress instead of starting their own.
    """

    def __init__(self, *, refresh_seconds: float) -> None:
        self.refresh_seconds = refresh_seconds
        self._read_at: datetime | None = None
        self._lock = asyncio.Lock()

    def _fresh(self, now: datetime) -> bool:
        return self._read_at is not None and (
            (now - self._read_at).total_seconds() < self.refresh_seconds
        )

    async def refresh(
        self, *, sessionmaker: async_sessionmaker[AsyncSession], now: datetime
    ) -> None:
        if self._fresh(now):
            return
        async with self._lock:
            if self._fresh(now):
                return
            if await refresh_database_gauges(sessionmaker=sessionmaker):
                self._read_at = now


async def refresh_database_gauges(*, sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    """Sets the conversation and sweeper gauges from the database. When the database is
    down or slow they keep their last values, so the process metrics are still served.
    Whether the figures were read."""
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
        return False
    return True
