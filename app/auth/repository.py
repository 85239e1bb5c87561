"""Every statement over sign-ins, and the lookups that turn a credential into a user.

`SignInRepository(session, owner_id)` is built for one owner: each statement names
`user_id = :owner`. `CredentialRepository(session)` finds the user a request presents a
credential for (a token's user and sign-in, or an API key's hash): the credential is the
key, as a share link's token is. `SignInOperatorRepository(session)` is the cross-user
side: forgetting ended sign-ins, and telling which of a process's streams still have a
live sign-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.apikeys.models import ApiKey
from app.auth.models import AccountEvent, SignIn, User
from app.core.tenancy import owned, owned_update

# The two kinds of sign-in (app/auth/tokens.py says how they differ).
COOKIE = "cookie"
BEARER = "bearer"


def live_filter(now: Any, idle_seconds: int = 0, *, idle_since: Any = None) -> Any:
    """The rows that still sign someone in at `now` (values or bound parameters)."""
    if idle_since is None:
        idle_since = now - timedelta(seconds=idle_seconds)
    return sa.and_(
        col(SignIn.ended_at).is_(None),
        col(SignIn.expires_at) > now,
        sa.or_(col(SignIn.kind) == BEARER, col(SignIn.last_used_at) > idle_since),
    )


# Every authenticated request runs this: built once, with the live-sign-in rules of
# `live_filter` as parameters (a statement built per call costs more CPU than the query).
_USER_WITH_LIVE_SIGN_IN = (
    sa.select(User, SignIn)
    .join(SignIn, col(SignIn.user_id) == col(User.id))
    .where(
        col(User.id) == sa.bindparam("user_id"),
        col(SignIn.id) == sa.bindparam("sign_in_id"),
        live_filter(sa.bindparam("now"), idle_since=sa.bindparam("idle_since")),
    )
)

# A request with an API key runs this instead: the key's row exists while the key works.
_USER_WITH_API_KEY = (
    sa.select(User, ApiKey)
    .join(ApiKey, col(ApiKey.user_id) == col(User.id))
    .where(col(ApiKey.key_hash) == sa.bindparam("key_hash"))
)


class CredentialRepository:
    """The user behind a credential, in one query each."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def user_with_sign_in(
        self, user_id: uuid.UUID, sign_in_id: uuid.UUID, *, now: Any, idle_seconds: int
    ) -> tuple[User, SignIn] | None:
        """The user of a token and its sign-in row, if that sign-in is the user's and live."""
        params = {
            "user_id": user_id,
            "sign_in_id": sign_in_id,
            "now": now,
            "idle_since": now - timedelta(seconds=idle_seconds),
        }
        row = (await self.session.execute(_USER_WITH_LIVE_SIGN_IN, params)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def user_with_api_key(self, key_hash: str) -> tuple[User, ApiKey] | None:
        """The user of an API key and the key's row, if the key is live."""
        row = (await self.session.execute(_USER_WITH_API_KEY, {"key_hash": key_hash})).one_or_none()
        return (row[0], row[1]) if row is not None else None


class SignInRepository:
    """One owner's sign-ins."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def live_newest_first(self, now: datetime, idle_seconds: int) -> list[SignIn]:
        rows = await self.session.scalars(
            owned(SignIn, self.owner_id)
            .where(live_filter(now, idle_seconds))
            .order_by(col(SignIn.last_used_at).desc(), col(SignIn.id))
        )
        return list(rows)

    async def end(self, sign_in_id: uuid.UUID, now: datetime, *, only_live: bool = True) -> bool:
        """Ends one sign-in; False when the owner has no such one (not yet ended)."""
        stmt = owned_update(SignIn, self.owner_id).where(col(SignIn.id) == sign_in_id)
        if only_live:
            stmt = stmt.where(col(SignIn.ended_at).is_(None))
        result = await self.session.execute(stmt.values(ended_at=now))
        return bool(getattr(result, "rowcount", 0))

    async def end_all(self, now: datetime, *, keep: uuid.UUID | None = None) -> int:
        """Ends every live sign-in but `keep`; returns how many."""
        stmt = owned_update(SignIn, self.owner_id).where(col(SignIn.ended_at).is_(None))
        if keep is not None:
            stmt = stmt.where(col(SignIn.id) != keep)
        result = await self.session.execute(stmt.values(ended_at=now))
        return int(getattr(result, "rowcount", 0) or 0)

    async def touch(self, sign_in_id: uuid.UUID, now: datetime) -> None:
        """Records use of a sign-in."""
        await self.session.execute(
            owned_update(SignIn, self.owner_id)
            .where(col(SignIn.id) == sign_in_id)
            .values(last_used_at=now)
        )


class SignInOperatorRepository:
    """Every user's sign-ins, for the sweep and the stream checks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_dead(self, now: datetime, *, batch: int | None = None) -> int:
        """Deletes sign-ins that can never sign anyone in again: ended, or expired, at or
        before `now` (up to `batch` of them, rows others hold skipped); returns how many."""
        dead = sa.or_(col(SignIn.ended_at) <= now, col(SignIn.expires_at) < now)
        if batch is None:
            result = await self.session.execute(sa.delete(SignIn).where(dead))
            return int(getattr(result, "rowcount", 0) or 0)
        picked = (
            sa.select(col(SignIn.id)).where(dead).limit(batch).with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(
            sa.delete(SignIn).where(col(SignIn.id).in_(picked)).returning(col(SignIn.id))
        )
        return len(rows.all())

    async def live_among(
        self, ids: Collection[uuid.UUID], now: datetime, idle_seconds: int
    ) -> set[uuid.UUID]:
        """Which of these sign-ins still sign someone in (one query)."""
        rows = await self.session.execute(
            sa.select(col(SignIn.id)).where(
                col(SignIn.id).in_(list(ids)), live_filter(now, idle_seconds)
            )
        )
        return {row[0] for row in rows}


class AccountEventOperatorRepository:
    """The account-event audit trail, for its purge."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_before(self, before: datetime, *, batch: int) -> int:
        """Deletes up to `batch` audit rows written before `before`; returns how many."""
        picked = (
            sa.select(col(AccountEvent.id))
            .where(col(AccountEvent.at) < before)
            .order_by(col(AccountEvent.at))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(
            sa.delete(AccountEvent)
            .where(col(AccountEvent.id).in_(picked))
            .returning(col(AccountEvent.id))
        )
        return len(rows.all())
