"""Engine, session factory and the one request-scoped transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

from app.core.config import Settings

# Set before any model is defined so constraint names are stable in migrations.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)
metadata = SQLModel.metadata


def async_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in (
        "postgresql+asyncpg://",
        "postgresql+psycopg://",
        "postgresql://",
        "postgres://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL, got {url.split(':', 1)[0]}://...")


def plain_dsn(url: str) -> str:
    """The libpq-style DSN that asyncpg itself takes (no SQLAlchemy driver suffix)."""
    return "postgresql://" + async_url(url)[len("postgresql+asyncpg://") :]


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    target = url or settings.database_url
    if not target:
        raise RuntimeError("no database URL: start the embedded server or set DATABASE_URL")
    return create_async_engine(
        async_url(target),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        # Dead connections after a database restart are replaced instead of failing a request.
        pool_pre_ping=True,
        connect_args={
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "timezone": "UTC",
                "application_name": "chatkeep",
            },
            "timeout": 5,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one AsyncSession (one pooled connection at most), closed at the end.

    Authentication reads the user through it and the route works in it, so a request
    needs one connection, not two. It never commits: `get_db_session` does.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


RequestSessionDep = Annotated[AsyncSession, Depends(get_request_session)]


class CommitHooks(Protocol):
    """What must happen around a commit (the live-events bus sends what was staged)."""

    async def commit(self, session: AsyncSession) -> None: ...

    def discard(self, session: AsyncSession) -> None: ...


async def get_db_session(
    request: Request, session: RequestSessionDep
) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: services flush, this commits once or rolls back."""
    hooks: CommitHooks | None = getattr(request.app.state, "events", None)
    try:
        yield session
        if hooks is not None:
            await hooks.commit(session)
        else:
            await session.commit()
    except BaseException:
        await session.rollback()
        if hooks is not None:
            hooks.discard(session)
        raise


# scope="function": the commit happens before the response is sent, so an acknowledged
# message is always durable.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
