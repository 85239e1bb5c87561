"""The user database: fastapi-users' SQLAlchemy adapter on the request's session, and the
one query every authenticated request runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlmodel import col

from app.apikeys.models import ApiKey
from app.auth.models import SignIn, User
from app.core.db import RequestSessionDep, commit

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


class UserDatabase(SQLAlchemyUserDatabase[User, uuid.UUID]):
    """fastapi-users' adapter on the request's own session.

    Authentication shares the request's connection and transaction, so a request needs one
    pooled connection, not two (two per request can starve the pool under load). The
    adapter commits on its own writes (registration, profile updates); those routes do
    nothing else in their transaction.
    """

    async def get_with_sign_in(
        self, user_id: uuid.UUID, sign_in_id: uuid.UUID, *, now: Any, idle_seconds: int
    ) -> tuple[User, SignIn] | None:
        """The user of a token and its sign-in row, in one query, if that sign-in is live."""
        params = {
            "user_id": user_id,
            "sign_in_id": sign_in_id,
            "now": now,
            "idle_since": now - timedelta(seconds=idle_seconds),
        }
        row = (await self.session.execute(_USER_WITH_LIVE_SIGN_IN, params)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def get_with_api_key(self, key_hash: str) -> tuple[User, ApiKey] | None:
        """The user of an API key and the key's row, in one query, if the key is live."""
        params = {"key_hash": key_hash}
        row = (await self.session.execute(_USER_WITH_API_KEY, params)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def touch_api_key(self, row: ApiKey, now: Any) -> None:
        """Records use of a key, committed at once like `touch_sign_in`."""
        await self.session.execute(
            sa.update(ApiKey).where(col(ApiKey.id) == row.id).values(last_used_at=now)
        )
        await commit(self.session)
        row.last_used_at = now

    async def touch_sign_in(self, row: SignIn, now: Any) -> None:
        """Records use. Commits the request's (so far read-only) transaction at once, so
        the write holds no lock for the rest of the request."""
        await self.session.execute(
            sa.update(SignIn).where(col(SignIn.id) == row.id).values(last_used_at=now)
        )
        await commit(self.session)
        row.last_used_at = now


async def get_user_db(session: RequestSessionDep) -> AsyncIterator[UserDatabase]:
    yield UserDatabase(session, User)
