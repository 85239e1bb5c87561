"""fastapi-users wiring: user database, manager, the bearer and cookie backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi_users import BaseUserManager, FastAPIUsers, InvalidPasswordException, UUIDIDMixin
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    CookieTransport,
    JWTStrategy,
)
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from app.auth.models import RevokedToken, User
from app.auth.tokens import RevocableJWTStrategy
from app.core.config import Settings, get_settings
from app.core.db import RequestSessionDep

AUTH_COOKIE_NAME = "chatkeep_auth"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class UserDatabase(SQLAlchemyUserDatabase[User, uuid.UUID]):
    """fastapi-users' adapter on the request's own session.

    Authentication shares the request's connection and transaction, so a request needs one
    pooled connection, not two (two per request can starve the pool under load). The
    adapter commits on its own writes (registration, profile updates); those routes do
    nothing else in their transaction.
    """

    async def get_unless_revoked(self, user_id: uuid.UUID, jti: str) -> User | None:
        """The user of a token, in one query that also checks the token was not signed out."""
        revoked = sa.exists().where(RevokedToken.jti == jti)  # type: ignore[arg-type]
        statement = sa.select(User).where(User.id == user_id, ~revoked)  # type: ignore[arg-type]
        return (await self.session.execute(statement)).scalar_one_or_none()


async def get_user_db(session: RequestSessionDep) -> AsyncIterator[UserDatabase]:
    yield UserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    def __init__(self, user_db: Any, secret: str) -> None:
        super().__init__(user_db)
        self.reset_password_token_secret = secret
        self.verification_token_secret = secret

    async def validate_password(self, password: str, user: Any) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidPasswordException(
                reason=f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidPasswordException(reason="Password is too long.")
        if user.email and password.lower() == user.email.lower():
            raise InvalidPasswordException(reason="Password must not be the email address.")


async def get_user_manager(
    request: Request,
    user_db: Annotated[UserDatabase, Depends(get_user_db)],
) -> AsyncIterator[UserManager]:
    settings: Settings = request.app.state.settings
    yield UserManager(user_db, settings.resolved_secret_key())


def get_jwt_strategy(request: Request) -> JWTStrategy[User, uuid.UUID]:
    settings: Settings = request.app.state.settings
    return RevocableJWTStrategy(
        secret=settings.resolved_secret_key(),
        lifetime_seconds=settings.access_token_ttl_seconds,
        sessionmaker=request.app.state.sessionmaker,
    )


_settings = get_settings()
bearer_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="jwt",
    transport=BearerTransport(tokenUrl="auth/jwt/login"),
    get_strategy=get_jwt_strategy,
)
cookie_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="cookie",
    transport=CookieTransport(
        cookie_name=AUTH_COOKIE_NAME,
        cookie_max_age=_settings.access_token_ttl_seconds,
        cookie_secure=_settings.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
    ),
    get_strategy=get_jwt_strategy,
)

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [bearer_backend, cookie_backend])
