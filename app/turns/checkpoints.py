"""The checkpoint of the turns generating in this process: a heartbeat that proves the
process alive (and learns which turns someone asked to stop), then the partial replies,
so that a follower on any instance sees the reply grow and a crash loses little."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import commit, roll_back
from app.events.bus import EventBus, user_event
from app.turns.repository import TurnOperatorRepository

logger = logging.getLogger("app.turns")


@dataclass(frozen=True)
class CheckpointItem:
    turn_id: uuid.UUID
    user_id: uuid.UUID
    session_id: str
    text: str | None  # None: unchanged since the last checkpoint (heartbeat only)


@dataclass(frozen=True)
class CheckpointResult:
    alive: frozenset[uuid.UUID]  # still generating here
    cancel_requested: frozenset[uuid.UUID]
    saved: frozenset[uuid.UUID] = frozenset()  # whose partial reply was written


async def checkpoint(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    items: Sequence[CheckpointItem],
    now: datetime,
    partial_timeout_seconds: float,
) -> CheckpointResult:
    """The heartbeat of every turn generating in this process, then their partial replies.

    The heartbeat is a small statement of its own, committed first: it proves the process
    alive and learns which turns someone asked to stop. The partial replies follow in a
    transaction of their own, given at most `partial_timeout_seconds` (a lock or a slow
    write fails them alone: they are written again at the next checkpoint), so a write of
    partial text never makes a healthy turn look stale to another instance.
    """
    async with sessionmaker() as db:
        try:
            turns = [(i.turn_id, i.user_id) for i in items]
            rows = await TurnOperatorRepository(db).heartbeat(turns, now=now)
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    alive = {uuid.UUID(str(r.id)) for r in rows}
    cancel = {uuid.UUID(str(r.id)) for r in rows if r.cancel}
    changed = [i for i in items if i.text is not None and i.turn_id in alive]
    saved: set[uuid.UUID] = set()
    if changed:
        try:
            saved = await _save_partials(
                sessionmaker=sessionmaker, bus=bus, items=changed, seconds=partial_timeout_seconds
            )
        except Exception as exc:  # written again at the next checkpoint
            logger.warning("saving partial replies failed: %s", exc)
    return CheckpointResult(
        alive=frozenset(alive), cancel_requested=frozenset(cancel), saved=frozenset(saved)
    )


async def _save_partials(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    items: Sequence[CheckpointItem],
    seconds: float,
) -> set[uuid.UUID]:
    async with sessionmaker() as db:
        try:
            turns = [(i.turn_id, i.user_id, i.text or "") for i in items]
            saved = await TurnOperatorRepository(db).save_partials(turns, seconds=seconds)
            for item in items:
                if item.turn_id in saved and item.text is not None:
                    bus.stage(
                        db,
                        user_event(
                            item.user_id,
                            "turn_progress",
                            turnId=str(item.turn_id),
                            length=len(item.text),
                        ),
                    )
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    return saved
