"""The stale sweep: a turn whose process stopped sending heartbeats for
TURN_STALE_SECONDS (killed, frozen, partitioned) is failed by whoever finds it (a
follower, or the periodic check in every process), so a crash never blocks a
conversation for long. The next turn on a conversation fails a stale one itself
(`app.turns.opening`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import commit
from app.events.bus import EventBus
from app.turns.problems import failed_event, interrupted_problem
from app.turns.repository import TurnOperatorRepository, TurnRepository


async def fail_stale_turns(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    now: datetime,
    stale_seconds: float,
    limit: int = 500,
) -> int:
    """Fail turns whose process went silent (killed, frozen, partitioned)."""
    cutoff = now - timedelta(seconds=stale_seconds)
    async with sessionmaker() as db:
        stale = await TurnOperatorRepository(db).stale(cutoff=cutoff, limit=limit)
        count = 0
        for turn in stale:
            if await TurnRepository(db, turn.user_id).mark_failed(
                turn_id=turn.id,
                session_id=turn.session_id,
                user_seq=turn.user_seq,
                problem=interrupted_problem(turn.session_id),
                now=now,
            ):
                bus.stage(db, failed_event(turn.user_id, turn.session_id, turn.id))
                count += 1
        await commit(db, bus)
    return count
