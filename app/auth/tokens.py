"""JWTs that can be signed out: each carries a `jti`, and logout records it as revoked.

Checking the denylist costs one primary-key lookup per authenticated request; in exchange
"sign out" means what users expect, on every instance at once.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import sqlalchemy as sa
from fastapi_users import exceptions, models
from fastapi_users.authentication import JWTStrategy
from fastapi_users.jwt import decode_jwt, generate_jwt
from fastapi_users.manager import BaseUserManager
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import RevokedToken, User


class RevocableJWTStrategy(JWTStrategy[User, uuid.UUID]):
    def __init__(
        self, *, secret: str, lifetime_seconds: int, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        super().__init__(secret=secret, lifetime_seconds=lifetime_seconds)
        self.sessionmaker = sessionmaker

    async def write_token(self, user: User) -> str:
        data = {"sub": str(user.id), "aud": self.token_audience, "jti": secrets.token_hex(16)}
        return generate_jwt(data, self.encode_key, self.lifetime_seconds, algorithm=self.algorithm)

    def _claims(self, token: str) -> dict[str, object] | None:
        try:
            return decode_jwt(
                token, self.decode_key, self.token_audience, algorithms=[self.algorithm]
            )
        except jwt.PyJWTError:
            return None

    async def read_token(
        self, token: str | None, user_manager: BaseUserManager[User, uuid.UUID]
    ) -> User | None:
        if token is None:
            return None
        claims = self._claims(token)
        if claims is None or "sub" not in claims:
            return None
        jti = claims.get("jti")
        if not isinstance(jti, str):
            return None  # tokens without an id cannot be signed out, so they are not accepted
        try:
            user_id = user_manager.parse_id(claims["sub"])
        except exceptions.InvalidID:
            return None
        from app.auth.manager import UserDatabase

        user_db = user_manager.user_db
        if isinstance(user_db, UserDatabase):
            return await user_db.get_unless_revoked(user_id, jti)
        raise TypeError("RevocableJWTStrategy needs the app's UserDatabase")

    async def destroy_token(self, token: str, user: models.UP) -> None:
        claims = self._claims(token)
        if claims is None or not isinstance(claims.get("jti"), str):
            return
        exp = claims.get("exp")
        expires_at = (
            datetime.fromtimestamp(float(exp), UTC)  # type: ignore[arg-type]
            if exp is not None
            else datetime.now(UTC) + timedelta(days=365)
        )
        async with self.sessionmaker() as session:
            await session.execute(
                insert(RevokedToken)
                .values(jti=claims["jti"], user_id=user.id, expires_at=expires_at)
                .on_conflict_do_nothing()
            )
            await session.commit()


async def purge_expired_revocations(
    *, sessionmaker: async_sessionmaker[AsyncSession], now: datetime
) -> int:
    async with sessionmaker() as session, session.begin():
        result = await session.execute(sa.delete(RevokedToken).where(sa.column("expires_at") < now))
    return int(getattr(result, "rowcount", 0) or 0)
