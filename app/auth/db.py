"""The user database: fastapi-users' SQLAlchemy adapter on the request's session, and the
one query every authenticated request runs (written in `app/auth/repository.py`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from app.apikeys.models import ApiKey
from app.apikeys.repository import ApiKeyRepository
from app.auth.models import SignIn, User
from app.auth.repository import BEARER as BEARER
from app.auth.repository import COOKIE as COOKIE
from app.auth.repository import CredentialRepository, SignInRepository
from app.auth.repository import live_filter as live_filter
from app.core.db import RequestSessionDep, commit


class UserDatabase(SQLAlchemyUserDatabase[User, uuid.UUID]):
    """fastapi-users' adapter on the request's own session.

    Authentication shares the request's connection and transaction, so a request needs one
    pooled connection, not two (two per request can starve the pool under load). The
    adapter commits on its own writes (profile updates); those routes do nothing else in
    their transaction. Registration is the exception: `create` only flushes, and the user
    manager commits the new account together with its confirmation mail (the outbox).
    """

    async def create(self, create_dict: dict[str, Any]) -> User:
        user = User(**create_dict)
        self.session.add(user)
        await self.session.flush()
        await self.session.refresh(user)
        return user

    async def get_with_sign_in(
        self, user_id: uuid.UUID, sign_in_id: uuid.UUID, *, now: Any, idle_seconds: int
    ) -> tuple[User, SignIn] | None:
        """The user of a token and its sign-in row, in one query, if that sign-in is live."""
        return await CredentialRepository(self.session).user_with_sign_in(
            user_id, sign_in_id, now=now, idle_seconds=idle_seconds
        )

    async def get_with_api_key(self, key_hash: str) -> tuple[User, ApiKey] | None:
        """The user of an API key and the key's row, in one query, if the key is live."""
        return await CredentialRepository(self.session).user_with_api_key(key_hash)

    async def touch_api_key(self, row: ApiKey, now: Any) -> None:
        """Records use of a key, committed at once like `touch_sign_in`."""
        await ApiKeyRepository(self.session, row.user_id).touch(row.id, now)
        await commit(self.session)
        row.last_used_at = now

    async def touch_sign_in(self, row: SignIn, now: Any) -> None:
        """Records use. Commits the request's (so far read-only) transaction at once, so
        the write holds no lock for the rest of the request."""
        await SignInRepository(self.session, row.user_id).touch(row.id, now)
        await commit(self.session)
        row.last_used_at = now


async def get_user_db(session: RequestSessionDep) -> AsyncIterator[UserDatabase]:
    yield UserDatabase(session, User)
