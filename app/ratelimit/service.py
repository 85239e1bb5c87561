"""Per-user rate-limit overrides, kept in PostgreSQL (services: keyword-only, flush only).

The statements are in `app/ratelimit/repository.py`; the counters and the in-memory copy
of the overrides live in `app.ratelimit.runtime`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import InvalidInputError
from app.ratelimit.policies import USER_POLICIES, PolicyError, parse_policy
from app.ratelimit.repository import OverrideRepository


async def get_overrides(*, session: AsyncSession, user_id: uuid.UUID) -> dict[str, str]:
    """The user's overrides by policy name (the caller checked that the user exists)."""
    return await load_overrides(session=session, user_id=user_id)


async def load_overrides(*, session: AsyncSession, user_id: uuid.UUID) -> dict[str, str]:
    return await OverrideRepository(session, user_id).by_policy()


def validate_overrides(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """Checks names and limit strings; returns the ones that are set (null = no override)."""
    valid: dict[str, str] = {}
    for name, text in overrides.items():
        if name not in USER_POLICIES:
            allowed = ", ".join(USER_POLICIES)
            raise InvalidInputError(
                f"{name!r} is not a per-user policy (one of: {allowed}).", code="unknown_policy"
            )
        if text is None:
            continue
        try:
            policy = parse_policy(name, text)
        except PolicyError as exc:
            raise InvalidInputError(str(exc), code="invalid_rate_limit") from None
        valid[name] = policy.text
    return valid


async def replace_overrides(
    *, session: AsyncSession, user_id: uuid.UUID, overrides: Mapping[str, str | None], now: datetime
) -> dict[str, str]:
    """Makes `overrides` the user's whole set: policies named with a string get it, the
    rest (null or absent) go back to the configured value."""
    wanted = validate_overrides(overrides)
    repo = OverrideRepository(session, user_id)
    await repo.delete_all()
    repo.add(wanted, now)
    await session.flush()
    return wanted


async def delete_overrides(*, session: AsyncSession, user_id: uuid.UUID) -> None:
    await OverrideRepository(session, user_id).delete_all()
    await session.flush()
