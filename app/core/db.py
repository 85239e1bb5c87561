"""Engine, session factory and the one request-scoped transaction."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Protocol

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
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


# A connection checked in less than this long ago skips the checkout ping.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "chatkeep_last_used"


class DatabaseTimeoutError(Exception):
    """A database call outlived its client-side bound (a hung server, a partition)."""


def _unique_statement_name() -> str:
    # Through PgBouncer (transaction mode) a named statement may land on any server
    # connection; a name that is never reused cannot collide with one left there.
    return f"__chatkeep_{uuid.uuid4().hex}__"


# What a package above adds to every engine built (encryption attaches its keyring), so
# that `core` names no package above it. Added on import (see `app/__init__.py`).
EngineSetup = Callable[[Engine, Settings], None]
ENGINE_SETUPS: list[EngineSetup] = []


def engine_setup(setup: EngineSetup) -> EngineSetup:
    """Adds `setup` to every `create_engine` (a decorator)."""
    if setup not in ENGINE_SETUPS:
        ENGINE_SETUPS.append(setup)
    return setup


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    target = url or settings.database_url
    if not target:
        raise RuntimeError("no database URL: start the embedded server or set DATABASE_URL")
    server_settings = {"timezone": "UTC", "application_name": "chatkeep"}
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout_seconds,
        "command_timeout": settings.db_command_timeout_seconds,
        "server_settings": server_settings,
    }
    if settings.db_pooler == "pgbouncer":
        # No statement cache (asyncpg's nor SQLAlchemy's: a cached statement would be looked
        # up on whichever server connection the next transaction gets), unique names for
        # the statements still prepared within a transaction, and no startup parameter
        # PgBouncer does not track (set statement_timeout and
        # idle_in_transaction_session_timeout on the role instead: ALTER ROLE ... SET ...;
        # docs/operations.md).
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    else:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
        if settings.db_idle_in_transaction_timeout_ms:
            # A backstop: the app never waits on a client inside a transaction, and if a bug
            # ever does, PostgreSQL ends that connection instead of keeping it forever.
            server_settings["idle_in_transaction_session_timeout"] = str(
                settings.db_idle_in_transaction_timeout_ms
            )
    engine = create_async_engine(
        async_url(target),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        # Replaced by the bounded ping below: SQLAlchemy's own waits for the command timeout.
        pool_pre_ping=False,
        connect_args=connect_args,
    )
    _install_bounds(engine.sync_engine, ping_timeout=settings.db_ping_timeout_seconds)
    for setup in ENGINE_SETUPS:
        setup(engine.sync_engine, settings)
    return engine


def _raw_asyncpg(dbapi_connection: Any) -> Any:
    return getattr(dbapi_connection, "_connection", None)


def _install_bounds(engine: Engine, *, ping_timeout: float) -> None:
    """A bounded ping on checkout, and a timed-out connection dropped at once.

    After a client-side timeout asyncpg still waits for its cancel request, which a frozen
    server never answers, and every later call on that connection (even ROLLBACK) would
    wait too. So the connection is aborted on the spot and reported as a disconnect: the
    pool replaces it, and the request fails promptly instead of hanging.
    """

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> BaseException | None:
        original = context.original_exception
        if not isinstance(original, TimeoutError):
            return None
        connection = context.connection
        if connection is not None and not connection.invalidated:
            raw = _raw_asyncpg(connection.connection.dbapi_connection)
            if raw is not None:
                raw.terminate()
        context.is_disconnect = True
        return DatabaseTimeoutError("the database did not answer in time")

    @event.listens_for(engine, "checkin")
    def _note_use(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        raw = _raw_asyncpg(dbapi_connection)
        if raw is None:
            return
        # A connection that answered a moment ago is trusted without a round trip (a turn
        # checks out twice, and every round trip costs); a frozen server is still caught
        # by the command timeout of the first statement.
        if time.monotonic() - record.info.get(_LAST_USED, -PING_AFTER_IDLE_SECONDS) < (
            PING_AFTER_IDLE_SECONDS
        ):
            return
        try:
            # Simple query protocol: one round trip, nothing prepared (safe behind PgBouncer).
            dbapi_connection.await_(raw.execute("SELECT 1", timeout=ping_timeout))
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raw.terminate()
            # The pool drops this connection and tries a fresh one (bounded by the connect
            # timeout); if that fails too, the error reaches the request as an outage.
            raise DisconnectionError(f"database ping failed: {exc!r}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def bound_url(sessionmaker: async_sessionmaker[AsyncSession]) -> str:
    """The URL (password included) of the engine `sessionmaker` binds: for an engine of
    one's own to the same database, on another event loop."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    return engine.url.render_as_string(hide_password=False)


async def get_request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one AsyncSession (one pooled connection at most), closed at the end.

    Authentication reads the user through it and the route works in it, so a request
    needs one connection, not two. It never commits: `get_db_session` does.
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


RequestSessionDep = Annotated[AsyncSession, Depends(get_request_session)]


async def end_transaction(session: AsyncSession) -> None:
    """Commits what the session did so far and gives its connection back to the pool, for a
    route about to wait on its client (a slow upload). The session opens a new transaction
    when it is next used."""
    await commit(session)


class CommitHooks(Protocol):
    """What goes out with a commit (the live-events bus sends the events staged on it)."""

    async def before_commit(self, session: AsyncSession) -> None: ...

    async def after_commit(self, session: AsyncSession) -> None: ...

    def discard(self, session: AsyncSession) -> None: ...


async def commit(session: AsyncSession, hooks: CommitHooks | None = None) -> None:
    """The one way anything commits: requests, turns, jobs and auth all come here, so what
    was staged on the transaction (events) leaves exactly when its rows are committed, and
    is dropped when they are not. Services never commit; they flush."""
    if hooks is not None:
        await hooks.before_commit(session)
    try:
        await session.commit()
    except BaseException:
        if hooks is not None:
            hooks.discard(session)
        raise
    if hooks is not None:
        await hooks.after_commit(session)


async def roll_back(session: AsyncSession, hooks: CommitHooks | None = None) -> None:
    """Undoes the transaction and forgets what was staged on it."""
    await session.rollback()
    if hooks is not None:
        hooks.discard(session)


@contextlib.asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], hooks: CommitHooks | None = None
) -> AsyncIterator[AsyncSession]:
    """One short transaction on its own pooled connection: it commits (with `hooks`) when
    the block ends, and rolls back when the block raises."""
    async with sessionmaker() as session:
        try:
            yield session
            await commit(session, hooks)
        except BaseException:
            await roll_back(session, hooks)
            raise


async def get_db_session(
    request: Request, session: RequestSessionDep
) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: services flush, this commits once or rolls back."""
    hooks: CommitHooks | None = getattr(request.app.state, "events", None)
    try:
        yield session
        await commit(session, hooks)
    except BaseException:
        await roll_back(session, hooks)
        raise


# scope="function": the commit happens before the response is sent, so an acknowledged
# message is always durable.
SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
