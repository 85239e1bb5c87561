"""User operations for the CLI and tests (outside HTTP)."""

from __future__ import annotations

import contextlib

from fastapi_users.exceptions import UserAlreadyExists
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.manager import UserManager
from app.auth.models import User
from app.auth.schemas import UserCreate
from app.core.errors import ConflictError


async def create_user(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    secret: str,
    email: str,
    password: str,
    is_superuser: bool = False,
) -> User:
    async with sessionmaker() as session:
        manager = UserManager(SQLAlchemyUserDatabase(session, User), secret)
        try:
            return await manager.create(
                UserCreate(
                    email=email, password=password, is_superuser=is_superuser, is_verified=True
                )
            )
        except UserAlreadyExists as exc:
            raise ConflictError(f"A user with email {email} already exists.") from exc


async def promote_to_superuser(
    *, sessionmaker: async_sessionmaker[AsyncSession], email: str
) -> bool:
    from sqlalchemy import func, update

    async with sessionmaker() as session:
        result = await session.execute(
            update(User).where(func.lower(User.email) == email.lower()).values(is_superuser=True)
        )
        await session.commit()
        with contextlib.suppress(AttributeError):
            return bool(result.rowcount)  # type: ignore[attr-defined]
        return False
