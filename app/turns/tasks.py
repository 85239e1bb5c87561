"""The stale-turn check: replies whose process went silent (killed, frozen, cut off) are
failed, so their conversation can go on. Every process runs it; the conditional update
makes a turn fail once, whoever gets there first."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.periodic import running_every
from app.events.bus import EventBus
from app.turns.recovery import fail_stale_turns

logger = logging.getLogger("app.turns")


def running_stale_turn_check(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    clock: Clock,
    stale_seconds: float,
) -> AbstractAsyncContextManager[None]:
    async def check() -> None:
        failed = await fail_stale_turns(
            sessionmaker=sessionmaker, bus=bus, now=clock.now(), stale_seconds=stale_seconds
        )
        if failed:
            logger.warning("failed %d turns whose process went silent", failed)

    return running_every(max(1.0, stale_seconds / 3), check, what="stale-turn check", logger=logger)
