"""Every statement over `rate_limit_override`, for one user (`OverrideRepository`).

An operator sets another user's overrides through the same owner-scoped repository, built
for that user: the owner is the user whose limits they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.tenancy import owned, owned_delete
from app.ratelimit.models import RateLimitOverride


class OverrideRepository:
    """One user's rate-limit overrides."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def by_policy(self) -> dict[str, str]:
        rows = await self.session.scalars(owned(RateLimitOverride, self.owner_id))
        return {row.policy: row.limits for row in rows}

    async def delete_all(self) -> None:
        await self.session.execute(owned_delete(RateLimitOverride, self.owner_id))

    def add(self, overrides: Mapping[str, str], now: datetime) -> None:
        for policy, text in overrides.items():
            self.session.add(
                RateLimitOverride(user_id=self.owner_id, policy=policy, limits=text, updated_at=now)
            )
