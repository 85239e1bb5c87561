"""Test database and clients.

One throw-away database per run, built by the Alembic migrations, on the server named by
TEST_DATABASE_URL or else on an embedded PostgreSQL of the tests' own (never the dev
data). Every test starts from empty tables.

One app per test process: the `app` fixture serves every test whose settings and clock are
the defaults with one running app (its lifespan, pool and event listener started once), and
gives it that test's own settings object, assistant, mailer and turn queue. A test that
changes a setting before the app starts (a fixture override) gets an app of its own, as
before. A test that counts connections on the server uses `without_process_app`.

`register` writes the user straight into the database with TEST_PASSWORD hashed once by the
app's own hasher, and signs it in as `/auth/jwt/login` does; the tests of registration
itself post to `/auth/register`.

With TEST_PGBOUNCER=1 the app and the tests reach that database through a real PgBouncer
in transaction mode (started here, on a free port), as `DB_POOLER=pgbouncer` deployments
do; migrations go to the server directly (DATABASE_DIRECT_URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from sqlmodel import col

from app.assistant.factory import close_assistant
from app.auth.db import BEARER
from app.auth.models import User
from app.auth.passwords import password_helper
from app.auth.schemas import UserCreate
from app.auth.tokens import new_sign_in, sign_in_limits, sign_in_token
from app.core.clock import FrozenClock
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.embedded import to_asyncpg_url
from app.core.runtime import PROJECT_ROOT, run_migrations
from app.jobs.models import Job, JobKind, JobStatus
from app.main import create_app
from tests.processes import free_port

TEST_PASSWORD = "correct horse battery staple"
# The tests choose their assistant; the default one (the local model) is tested on its own
# (tests/assistant/test_local_model.py). Server processes the tests start inherit this.
os.environ.setdefault("ASSISTANT_BACKEND", "builtin")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
THROUGH_PGBOUNCER = os.environ.get("TEST_PGBOUNCER", "").lower() in {"1", "true", "yes"}
logger = logging.getLogger("tests")


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


def _asyncpg_kwargs(url: str) -> dict[str, Any]:
    # asyncpg understands ?host=/socket/dir in a DSN. No statement cache: the URL may be
    # PgBouncer's, in transaction mode.
    return {"dsn": _plain(url), "statement_cache_size": 0}


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        yield explicit
        return
    from app.core.embedded import start_embedded_postgres

    url, _handle = start_embedded_postgres(PROJECT_ROOT / ".data" / "test-pg")
    yield url


@pytest.fixture(scope="session")
def direct_database_url(server_url: str) -> Iterator[str]:
    """The run's database on the server itself (migrations, schema checks)."""
    name = f"chatkeep_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(**_asyncpg_kwargs(_with_database(server_url, "postgres")))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = _with_database(
        server_url if "+asyncpg" in server_url else to_asyncpg_url(server_url), name
    )
    run_migrations(url)
    try:
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(direct_database_url: str) -> Iterator[str]:
    """The URL the app uses: the database itself, or PgBouncer in front of it."""
    if not THROUGH_PGBOUNCER:
        yield direct_database_url
        return
    from tests.pgbouncer import PgBouncer

    bouncer = PgBouncer(direct_database_url)
    database = direct_database_url.split("?", 1)[0].rsplit("/", 1)[1]
    # Settings() and the server processes the tests start read these.
    saved = {k: os.environ.get(k) for k in ("DB_POOLER", "DATABASE_DIRECT_URL")}
    os.environ.update(DB_POOLER="pgbouncer", DATABASE_DIRECT_URL=direct_database_url)
    try:
        yield bouncer.url(database)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        bouncer.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def default_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        app_env="test",
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-" + "x" * 40,
        sweeper_enabled=False,
        # The purges are scheduled runs; their tests queue and run them on purpose.
        scheduled_jobs_enabled=False,
        log_level="WARNING",
        # Rate limits have their own tests (tests/ratelimit); elsewhere they would make an
        # outcome depend on how many requests a test happens to send.
        rate_limit_enabled=False,
        # Tests move the clock by days; a bearer token must not expire under them (the
        # sign-in tests check lifetimes with their own figures).
        access_token_ttl_seconds=365 * 86_400,
    )


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return default_settings(database_url, data_dir)


@pytest.fixture(scope="session")
def _process_clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def clock(_process_clock: FrozenClock) -> FrozenClock:
    """A clock that stands still until moved; it starts at the real time in every test.

    One object per test process (the shared app's turn runner and jobs hold it)."""
    _process_clock.set(datetime.now(UTC))
    return _process_clock


# --- empty tables between tests ---------------------------------------------------------

_TABLES_SQL = """
SELECT c.relname AS name,
       coalesce(array_agg(DISTINCT k.conrelid::regclass::text)
                FILTER (WHERE k.conrelid IS NOT NULL AND k.conrelid <> c.oid), '{}') AS children
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_constraint k ON k.contype = 'f' AND k.confrelid = c.oid
WHERE c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
GROUP BY c.relname
"""
_RESTART_SEQUENCES = (
    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
    "FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
)


class TableCleaner:
    """Empties every table of the test database, as a TRUNCATE ... RESTART IDENTITY would.

    It deletes from the tables that have rows (those that refer to others first) and
    restarts the sequences that moved: on the few rows a test leaves, that costs a few
    milliseconds, where a TRUNCATE makes new files for every table and index (a few
    hundred milliseconds with fsync on).
    """

    def __init__(self, tables: list[tuple[str, list[str]]]) -> None:
        children = dict(tables)
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            order.append(name)  # a placeholder against cycles, moved below
            for child in children.get(name, []):
                visit(child)
            order.remove(name)
            order.append(name)

        for name in sorted(children):
            visit(name)
        self.order = order  # every table after the tables that refer to it
        self.probe = " UNION ALL ".join(
            f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in order
        )

    @classmethod
    async def for_connection(cls, conn: asyncpg.Connection) -> TableCleaner:
        rows = await conn.fetch(_TABLES_SQL)
        return cls([(r["name"], [c.strip('"') for c in r["children"]]) for r in rows])

    async def empty(self, conn: asyncpg.Connection) -> None:
        filled = {r[0] for r in await conn.fetch(self.probe)} if self.probe else set()
        deletes = [f'DELETE FROM "{name}"' for name in self.order if name in filled]
        await conn.execute(";\n".join([*deletes, _RESTART_SEQUENCES]))


async def _truncate(database_url: str) -> None:
    """Empties every table (for tests that start servers or apps of their own)."""
    conn = await asyncpg.connect(**_asyncpg_kwargs(database_url))
    try:
        cleaner = await TableCleaner.for_connection(conn)
        await cleaner.empty(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def _cleaner(database_url: str) -> AsyncIterator[Any]:
    """Empties the tables before a test, over one connection kept for the whole run."""
    conn = await asyncpg.connect(**_asyncpg_kwargs(database_url))
    cleaner = await TableCleaner.for_connection(conn)

    async def empty() -> None:
        await cleaner.empty(conn)

    try:
        yield empty
    finally:
        await conn.close()


# --- the app ----------------------------------------------------------------------------


def _comparable(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(exclude={"data_dir"})


class ProcessApp:
    """One running app for every test of this process that keeps the default settings.

    Routes, middleware, the engine and its pool, the event listener and the turn runner
    are built once. Each test gets the parts a test may replace or that keep state of their
    own: its settings object (so `settings.x = ...` in a test reaches the routes, as with
    an app of its own), a fresh assistant, mailer (outbox in the test's data_dir), turn
    queue and rate limits, all from `create_app` itself. After the test its replies and
    streams are ended as at shutdown, and the next test starts from empty tables.
    """

    def __init__(self, baseline: Settings, clock: FrozenClock) -> None:
        self.baseline = _comparable(baseline)
        self.settings = baseline
        self.clock = clock
        self.app: FastAPI | None = None
        self._stack = contextlib.AsyncExitStack()

    def fits(self, settings: Settings, clock: Any) -> bool:
        return clock is self.clock and _comparable(settings) == self.baseline

    async def start_test(self, settings: Settings) -> FastAPI:
        if self.app is None:
            app = create_app(self.settings, clock=self.clock, migrate=False, run_sweeper=False)
            await self._stack.enter_async_context(app.router.lifespan_context(app))
            self.app = app
        app = self.app
        # What create_app puts on app.state before the lifespan runs, built for this test.
        fresh = create_app(settings, clock=self.clock, migrate=False, run_sweeper=False)
        for name, value in vars(fresh.state)["_state"].items():
            setattr(app.state, name, value)
        runner = app.state.turns
        runner.max_in_flight = settings.max_turns_in_flight
        runner.timeout_seconds = settings.llm_timeout_seconds
        runner.checkpoint_seconds = settings.turn_checkpoint_seconds
        app.state.events.hub.recent.clear()
        return app

    @contextlib.asynccontextmanager
    async def jobs_paused(self) -> AsyncIterator[None]:
        """No job of the database is taken by this app's worker inside the block."""
        worker = getattr(self.app.state, "jobs", None) if self.app is not None else None
        if worker is None:
            yield
            return
        await worker.stop()
        try:
            yield
        finally:
            worker.start()

    async def end_test(self) -> None:
        app = self.app
        assert app is not None
        runner, hub = app.state.turns, app.state.events.hub
        # As at shutdown: streams end, followers wake, replies still running are ended.
        hub.draining = True
        hub.resync_all()
        runner.wake_followers()
        for live in list(runner.live.values()):
            live.interrupted = True
            live.cancel_generation()
        runs = set(runner._runs)
        if runs:
            await asyncio.wait(runs, timeout=30)
        for _ in range(1000):
            if not any(hub.streams.values()) and not any(hub.turn_watchers.values()):
                break
            await asyncio.sleep(0.01)
        else:
            logger.warning("live-event streams still open after the test")
        hub.draining = False
        await close_assistant(app.state.assistant)
        await drain_mail(app)  # no mail of this test left for the next one
        # Back to the real time: while idle, its stale-turn check must not find the turns
        # of other servers on this database (tests with processes or a web server) stale.
        self.clock.set(datetime.now(UTC))

    async def stop(self) -> None:
        """Stops the app (it starts again when a test needs it): a test that does not use
        it sees no connection of it on the server, as when every test had its own app."""
        if self.app is not None:
            self.app = None
            await self._stack.aclose()
            self._stack = contextlib.AsyncExitStack()


# The running shared app of this process, if any (for the fixture below).
_PROCESS_APPS: list[ProcessApp] = []


@pytest.fixture
async def without_process_app() -> None:
    """For tests that count the app's connections on the server (real server processes):
    the shared app of this process is stopped, so none of its connections are there."""
    for shared in _PROCESS_APPS:
        await shared.stop()


@pytest.fixture(scope="session")
async def _process_app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, _process_clock: FrozenClock
) -> AsyncIterator[ProcessApp]:
    shared = ProcessApp(
        default_settings(database_url, tmp_path_factory.mktemp("app-data")), _process_clock
    )
    _PROCESS_APPS.append(shared)
    try:
        yield shared
    finally:
        _PROCESS_APPS.remove(shared)
        await shared.stop()


@pytest.fixture
async def app(
    settings: Settings,
    clock: FrozenClock,
    _cleaner: Any,
    _process_app: ProcessApp,
) -> AsyncIterator[FastAPI]:
    await _cleaner()
    if _process_app.fits(settings, clock):
        application = await _process_app.start_test(settings)
        try:
            yield application
        finally:
            await _process_app.end_test()
        return
    application = create_app(settings, clock=clock, migrate=False, run_sweeper=False)
    # The shared app stays up for the tests after this one, but its job worker must not
    # take this app's jobs (mail sealed with this test's keys, say): it waits meanwhile.
    async with _process_app.jobs_paused(), application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def sessionmaker(app: FastAPI) -> Any:
    return app.state.sessionmaker


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


# --- users ------------------------------------------------------------------------------

# The base URL of each running `live_url` server, and the app it serves.
_LIVE_APPS: dict[str, FastAPI] = {}


@functools.cache
def hashed_test_password() -> str:
    """TEST_PASSWORD hashed by the app's own hasher, once per process (argon2 is slow on
    purpose: a few hundred milliseconds on a busy machine)."""
    return password_helper().hash(TEST_PASSWORD)


def _new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def _direct_app(client: httpx.AsyncClient) -> FastAPI | None:
    """The app behind `client` when users may be written to its database directly: not
    when counting requests (rate limits on) or mailing (verification required) is part of
    registering or signing in."""
    transport = getattr(client, "_transport", None)
    if isinstance(transport, httpx.ASGITransport):
        app = transport.app
    else:
        app = _LIVE_APPS.get(str(client.base_url).rstrip("/"))
    if not isinstance(app, FastAPI) or not hasattr(app.state, "sessionmaker"):
        return None
    settings: Settings = app.state.settings
    if settings.rate_limit_enabled or settings.require_verified_email:
        return None
    return app


def _client_address(client: httpx.AsyncClient) -> str:
    transport = getattr(client, "_transport", None)
    if isinstance(transport, httpx.ASGITransport):
        return str(transport.client[0])
    return "127.0.0.1"


async def _bearer_sign_in(
    session: Any, app: FastAPI, client: httpx.AsyncClient, user_id: uuid.UUID
) -> dict[str, str]:
    """A bearer sign-in row and its token, as `POST /auth/jwt/login` writes them."""
    settings: Settings = app.state.settings
    lifetime, _ = sign_in_limits(settings, BEARER)
    row = new_sign_in(
        user_id=user_id,
        kind=BEARER,
        user_agent=client.headers.get("user-agent"),
        ip=_client_address(client),
        now=app.state.clock.now(),
        lifetime_seconds=lifetime,
    )
    session.add(row)
    token = sign_in_token(
        secret=settings.resolved_secret_key(),
        lifetime_seconds=lifetime,
        user_id=user_id,
        sign_in_id=row.id,
    )
    return {"Authorization": f"Bearer {token}"}


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """A new user, signed in: returns bearer headers for it.

    Written straight into the app's database (the password hash computed once) with a
    sign-in as `/auth/jwt/login` makes one; through the HTTP routes when the client's app
    counts or mails on sign-up (see `_direct_app`)."""
    app = _direct_app(client)
    if app is None:
        return await register_over_http(client, email)
    address = UserCreate(email=email or _new_email(), password=TEST_PASSWORD).email
    async with app.state.sessionmaker() as session:
        user = User(email=address, hashed_password=hashed_test_password())
        session.add(user)
        await session.flush()
        headers = await _bearer_sign_in(session, app, client, user.id)
        await session.commit()
    return headers


async def register_over_http(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """Registers through `POST /auth/register` and signs in through `/auth/jwt/login`."""
    email = email or _new_email()
    r = await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    assert r.status_code == 201, r.text
    return await login_over_http(client, email)


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """A new bearer sign-in of the user with TEST_PASSWORD; the headers for it.

    When the stored hash is the one `register` wrote (so the password is TEST_PASSWORD),
    the sign-in is written directly; otherwise through `/auth/jwt/login`."""
    app = _direct_app(client)
    if app is not None:
        async with app.state.sessionmaker() as session:
            user = (
                await session.execute(
                    sa.select(User).where(sa.func.lower(col(User.email)) == sa.func.lower(email))
                )
            ).scalar_one_or_none()
            known = user is not None and user.hashed_password == hashed_test_password()
            if user is not None and known and user.is_active:
                headers = await _bearer_sign_in(session, app, client, user.id)
                await session.commit()
                return headers
    return await login_over_http(client, email)


async def login_over_http(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def chat(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    text: str,
    session_id: str | None = None,
    context: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if session_id is not None:
        body["sessionId"] = session_id
    if context is not None:
        body["context"] = context
    return await client.post("/api/chat", json=body, headers=headers)


# httpx's ASGI transport waits for a whole response, so streaming, following a turn while
# it is written and dropping a connection mid-reply need a real server and a real socket.
# This one runs the test's own `app` in the test's event loop (its state stays reachable).
@pytest.fixture
async def live_url(app: FastAPI) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    else:  # pragma: no cover
        raise RuntimeError("uvicorn did not start")
    url = f"http://127.0.0.1:{port}"
    _LIVE_APPS[url] = app
    try:
        yield url
    finally:
        _LIVE_APPS.pop(url, None)
        server.should_exit = True
        server.force_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def live(live_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as c:
        yield c


@pytest.fixture
def engine_factory(settings: Settings) -> Any:
    def make() -> Any:
        return create_sessionmaker(create_engine(settings))

    return make


# --- mail --------------------------------------------------------------------------------


async def drain_mail(app: FastAPI, timeout: float = 60) -> None:
    """Waits until the app's job worker has sent (or given up on) every mail of the outbox."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with app.state.sessionmaker() as db:
            pending = (
                await db.execute(
                    sa.select(sa.func.count())
                    .select_from(Job)
                    .where(
                        col(Job.kind) == JobKind.MAIL.value,
                        col(Job.status).in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                    )
                )
            ).scalar_one()
        if not pending:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{pending} mails still unsent"
        await asyncio.sleep(0.05)
