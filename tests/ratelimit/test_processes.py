"""Two real server processes sharing one Redis: one count, one set of overrides."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess
from tests.ratelimit.conftest import chat_body

pytestmark = [pytest.mark.process, pytest.mark.redis, pytest.mark.storage]

CHAT_LIMIT = 7


def app_server(env: dict[str, str]) -> ServerProcess:
    argv = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", "{port}"]
    return ServerProcess(argv, env)


@pytest.fixture
async def two_servers(database_url: str, redis_url: str, key_prefix: str, tmp_path: Path):
    await _truncate(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "SWEEP"))}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path),
        SECRET_KEY="shared-secret-" + "y" * 40,  # a token from one is good on the other
        LOG_LEVEL="WARNING",
        SWEEPER_ENABLED="false",
        RATE_LIMIT_STORAGE_URL=redis_url,
        RATE_LIMIT_KEY_PREFIX=key_prefix,
        RATE_LIMIT_STORAGE_TIMEOUT_SECONDS="5",
        RATE_LIMIT_CHAT=f"{CHAT_LIMIT}/minute",
        RATE_LIMIT_AUTH="100/minute",
        RATE_LIMIT_DEFAULT="1000/minute",
    )
    servers = [app_server(env), app_server(env)]
    try:
        for s in servers:
            s.wait_ready()
        yield servers
    finally:
        for s in servers:
            s.stop()


async def _user(base: str) -> tuple[str, dict[str, str]]:
    email = f"burst-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = await c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
    return email, {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _burst(servers: list[ServerProcess], headers: dict[str, str], n: int) -> list[int]:
    """n chat turns fired at once, alternating between the servers."""
    clients = [httpx.AsyncClient(base_url=s.base, timeout=60) for s in servers]
    try:
        responses = await asyncio.gather(
            *(
                clients[i % len(clients)].post(
                    "/api/chat", json=chat_body(f"burst {i}"), headers=headers
                )
                for i in range(n)
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    return [r.status_code for r in responses]


async def _chat_limit_seen_by(server: ServerProcess, headers: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as c:
        body = (await c.get("/api/me/limits", headers=headers)).json()
    return next(p["limit"] for p in body["policies"] if p["name"] == "chat")


async def test_concurrent_bursts_on_two_servers_admit_exactly_the_limit(two_servers, sql):
    a, b = two_servers
    _, user = await _user(a.base)
    codes = await _burst(two_servers, user, 4 * CHAT_LIMIT)
    assert codes.count(200) == CHAT_LIMIT
    assert codes.count(429) == 3 * CHAT_LIMIT

    # Another user is untouched by the first one's burst.
    _, other = await _user(b.base)
    codes = await _burst(two_servers, other, 2 * CHAT_LIMIT)
    assert codes.count(200) == CHAT_LIMIT

    # Stored: exactly the admitted turns, a user and an assistant message each.
    count = await sql("SELECT count(*) FROM chat_message")
    assert count == 2 * CHAT_LIMIT * 2

    # A superuser raises the first user's limit on server A; both servers apply it.
    admin_email, admin = await _user(a.base)
    await sql("UPDATE app_user SET is_superuser = true WHERE email = :email", email=admin_email)
    async with httpx.AsyncClient(base_url=a.base, timeout=10) as c:
        uid = (await c.get("/users/me", headers=user)).json()["id"]
        r = await c.put(
            f"/api/admin/users/{uid}/limits",
            json={"chat": f"{CHAT_LIMIT + 5}/minute"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
    assert await _chat_limit_seen_by(a, user) == f"{CHAT_LIMIT + 5}/minute"
    # Server B may hold the old value for RATE_LIMIT_OVERRIDE_CACHE_SECONDS (2 s).
    deadline = time.monotonic() + 15
    while await _chat_limit_seen_by(b, user) != f"{CHAT_LIMIT + 5}/minute":
        assert time.monotonic() < deadline, "server B never saw the override"
        await asyncio.sleep(0.25)
    codes = await _burst(two_servers, user, 20)
    assert codes.count(200) == 5
