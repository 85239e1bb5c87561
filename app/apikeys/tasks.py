"""Per-process questions about keys: which of these keys still work (the live-event streams
opened with a key ask, `app.events.tasks`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.apikeys.repository import ApiKeyOperatorRepository


async def live_keys(*, sessionmaker: async_sessionmaker[AsyncSession], ids: set[str]) -> set[str]:
    """Which of these keys are not revoked (one query, whatever their number). Across users:
    the ids are those of this process's own open streams."""
    wanted = []
    for i in ids:
        try:
            wanted.append(uuid.UUID(i))
        except ValueError:
            continue
    if not wanted:
        return set()
    async with sessionmaker() as session:
        return {str(i) for i in await ApiKeyOperatorRepository(session).existing(wanted)}
