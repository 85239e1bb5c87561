"""The user database: fastapi-users' SQLAlchemy adapter on the request's session. The one
query every authenticated request runs is `app/auth/repository.py`'s, called from
`app/auth/tokens.py`'s `read_credential`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from app.auth.models import User
from app.auth.repository import BEARER as BEARER
from app.auth.repository import COOKIE as COOKIE
from app.auth.repository import live_filter as live_filter
from app.core.db import RequestSessionDep, commit


class UserDatabase(SQLAlchemyUserDatabase[User, uuid.UUID]):
    """fastapi-users' adapter on the request's own session.

    Authentication shares the request's connection and transaction, so a request needs one
    pooled connection, not two (two per request can starve the pool under load). Its
    writes commit through the unit of work (`app.core.db.commit`), as every commit does:
    an update or a delete commits at once, with whatever the request's transaction holds
    (a credential change ends the other sign-ins in it); those routes do nothing else in
    their transaction. Registration is the exception: `create` only flushes, and the user
    manager commits the new account together with its confirmation mail (the outbox).
    """

    async def create(self, create_dict: dict[str, Any]) -> User:
        user = User(**create_dict)
        self.session.add(user)
        await self.session.flush()
        await self.session.refresh(user)
        return user

    async def update(self, user: User, update_dict: dict[str, Any]) -> User:
        for key, value in update_dict.items():
            setattr(user, key, value)
        self.session.add(user)
        await commit(self.session)
        await self.session.refresh(user)
        return user

    async def delete(self, user: User) -> None:
        await self.session.delete(user)
        await commit(self.session)


async def get_user_db(session: RequestSessionDep) -> AsyncIterator[UserDatabase]:
    yield UserDatabase(session, User)
