"""Every statement over `api_key`.

`ApiKeyRepository(session, owner_id)` is built for one owner: each statement names
`user_id = :owner`. `ApiKeyOperatorRepository(session)` answers the one question asked
across users: which of the keys behind this process's open streams still work.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.apikeys.models import ApiKey
from app.core.tenancy import owned, owned_delete, owned_update


class ApiKeyRepository:
    """One owner's API keys."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def lock(self) -> None:
        """Holds the owner's keys still until the transaction ends (count, then add)."""
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"chatkeep-api-keys:{self.owner_id}"},
        )

    async def count(self) -> int:
        return int(await self.session.scalar(owned(ApiKey, self.owner_id, sa.func.count())) or 0)

    async def newest_first(self) -> list[ApiKey]:
        rows = await self.session.scalars(
            owned(ApiKey, self.owner_id).order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))
        )
        return list(rows)

    async def delete(self, key_id: uuid.UUID) -> bool:
        """Deletes one key; False when the owner has no such key."""
        result = await self.session.execute(
            owned_delete(ApiKey, self.owner_id).where(col(ApiKey.id) == key_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def delete_by_hash(self, digest: str) -> None:
        await self.session.execute(
            owned_delete(ApiKey, self.owner_id).where(col(ApiKey.key_hash) == digest)
        )

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        """Records use of a key."""
        await self.session.execute(
            owned_update(ApiKey, self.owner_id)
            .where(col(ApiKey.id) == key_id)
            .values(last_used_at=now)
        )

    async def delete_all(self) -> int:
        result = await self.session.execute(owned_delete(ApiKey, self.owner_id))
        return int(getattr(result, "rowcount", 0) or 0)


class ApiKeyOperatorRepository:
    """Keys of any user, by id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing(self, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these key ids still exist (one query, whatever their number)."""
        rows = await self.session.execute(
            sa.select(col(ApiKey.id)).where(col(ApiKey.id).in_(list(ids)))
        )
        return {row[0] for row in rows}
