"""Test database and clients.

One throw-away database per run, built by the Alembic migrations, on the server named by
TEST_DATABASE_URL or else on an embedded PostgreSQL of the tests' own (never the dev
data). Every test starts from empty tables.

With TEST_PGBOUNCER=1 the app and the tests reach that database through a real PgBouncer
in transaction mode (started here, on a free port), as `DB_POOLER=pgbouncer` deployments
do; migrations go to the server directly (DATABASE_DIRECT_URL).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.core.embedded import to_asyncpg_url
from app.core.runtime import PROJECT_ROOT, run_migrations
from app.main import create_app
from tests.processes import free_port

TEST_PASSWORD = "correct horse battery staple"
# The tests choose their assistant; the default one (the local model) is tested on its own
# (tests/assistant/test_local_model.py). Server processes the tests start inherit this.
os.environ.setdefault("ASSISTANT_BACKEND", "builtin")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
THROUGH_PGBOUNCER = os.environ.get("TEST_PGBOUNCER", "").lower() in {"1", "true", "yes"}


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


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        app_env="test",
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-" + "x" * 40,
        sweeper_enabled=False,
        log_level="WARNING",
        # Rate limits have their own tests (tests/ratelimit); elsewhere they would make an
        # outcome depend on how many requests a test happens to send.
        rate_limit_enabled=False,
        # Tests move the clock by days; a bearer token must not expire under them (the
        # sign-in tests check lifetimes with their own figures).
        access_token_ttl_seconds=365 * 86_400,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


async def _truncate(database_url: str) -> None:
    conn = await asyncpg.connect(**_asyncpg_kwargs(database_url))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock, database_url: str) -> AsyncIterator[FastAPI]:
    await _truncate(database_url)
    application = create_app(settings, clock=clock, migrate=False, run_sweeper=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def sessionmaker(app: FastAPI) -> Any:
    return app.state.sessionmaker


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """Registers a user and returns bearer headers for it."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    r = await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    assert r.status_code == 201, r.text
    return await login(client, email)


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
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
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
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
