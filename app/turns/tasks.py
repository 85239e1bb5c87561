"""The stale-turn check: replies whose process went silent (killed, frozen, cut off) are
failed, so their conversation can go on. Every process runs it; the conditional update
makes a turn fail once, whoever gets there first."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.events.bus import EventBus
from app.turns.service import fail_stale_turns

logger = logging.getLogger("app.turns")


async def stale_turn_loop(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    clock: Clock,
    stale_seconds: float,
) -> None:
    tick = max(1.0, stale_seconds / 3)
    while True:
        await asyncio.sleep(tick)
        try:
            failed = await fail_stale_turns(
                sessionmaker=sessionmaker, bus=bus, now=clock.now(), stale_seconds=stale_seconds
            )
            if failed:
                logger.warning("failed %d turns whose process went silent", failed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be down; try again next tick
            logger.warning("stale-turn check failed, will retry: %s", exc)


@contextlib.asynccontextmanager
async def running_stale_turn_check(**kwargs: object) -> AsyncIterator[None]:
    task = asyncio.create_task(stale_turn_loop(**kwargs))  # type: ignore[arg-type]
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
