"""Rate-limit tests run on the real Redis at 127.0.0.1:6379, each under its own key prefix.

Without Redis they fail when CI=true and are skipped, loudly, elsewhere.
"""

from __future__ import annotations

import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from tests.conftest import IN_CI, TEST_PASSWORD

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"

# Small policies, so a test reaches them in a few requests.
TEST_POLICIES = {
    "rate_limit_chat": "3/minute;5/day",
    "rate_limit_export": "2/minute",
    "rate_limit_import": "1/hour",
    "rate_limit_credentials": "2/minute",
    "rate_limit_auth": "4/minute",
    "rate_limit_default": "6/minute",
    "rate_limit_mail": "3/day",
}

_ips = itertools.count(1)


def redis_available() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not redis_available():
        message = f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}; rate-limit tests need it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def settings(database_url: str, data_dir: Path, redis_url: str, key_prefix: str) -> Settings:
    return Settings(
        app_env="test",
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-" + "x" * 40,
        sweeper_enabled=False,
        log_level="WARNING",
        rate_limit_enabled=True,
        rate_limit_storage_url=redis_url,
        rate_limit_key_prefix=key_prefix,
        # A busy CI machine can be slow to answer; failing open there would be a flaky test.
        rate_limit_storage_timeout_seconds=5.0,
        **TEST_POLICIES,
    )


def unique_ip() -> str:
    n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def client_from(app: FastAPI, ip: str | None = None) -> httpx.AsyncClient:
    """A client whose requests come from `ip` (a fresh address by default)."""
    transport = httpx.ASGITransport(app=app, client=(ip or unique_ip(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def new_user(app: FastAPI, email: str | None = None) -> tuple[str, dict[str, str]]:
    """Registers and signs in from an address of its own, so sign-up traffic of one test
    does not use up the auth limit of another address."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    async with client_from(app) as c:
        r = await c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = await c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
    return email, {"Authorization": f"Bearer {r.json()['access_token']}"}


async def sign_in(app: FastAPI, email: str) -> dict[str, str]:
    async with client_from(app) as c:
        r = await c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def sql(database_url: str) -> Callable[..., Any]:
    """Runs one SQL statement on the test database outside any app; returns a scalar."""

    async def run(sql: str, **params: Any) -> Any:
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.text(sql), params)
                return result.scalar_one() if result.returns_rows else None
        finally:
            await engine.dispose()

    return run


async def make_superuser(sessionmaker: Any, email: str) -> None:
    async with sessionmaker() as s:
        await s.execute(
            sa.text("UPDATE app_user SET is_superuser = true WHERE email = :email"),
            {"email": email},
        )
        await s.commit()


@pytest.fixture
async def admin(app: FastAPI, sessionmaker: Any) -> dict[str, str]:
    email, headers = await new_user(app)
    await make_superuser(sessionmaker, email)
    return headers


def chat_body(text: str, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if session_id:
        body["sessionId"] = session_id
    return body


@pytest.fixture
def user_id_of() -> Callable[[httpx.AsyncClient, dict[str, str]], Any]:
    async def get(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
        r = await client.get("/users/me", headers=headers)
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    return get


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_from(app) as c:
        yield c
