"""Per-process work of the live events: ending the streams whose sign-in ended."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.apikeys.tasks import live_keys
from app.auth.tasks import live_sign_ins
from app.core.clock import Clock
from app.core.periodic import running_every
from app.events.bus import Hub

logger = logging.getLogger("app.events")


async def sign_out_ended_streams(
    *,
    hub: Hub,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    idle_seconds: int,
) -> int:
    """Ends this process's live-event streams whose sign-in ended (signed out here or on
    another device, by a password change or reset, an account deletion, or expiry), or
    whose API key was revoked."""
    open_ids = hub.open_sign_ins()
    if not open_ids:
        return 0
    live = await live_sign_ins(
        sessionmaker=sessionmaker, ids=open_ids, now=now, idle_seconds=idle_seconds
    )
    if rest := open_ids - live:  # opened with an API key, or ended
        live |= await live_keys(sessionmaker=sessionmaker, ids=rest)
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
