"""Where the counters live: Redis down means fail open; memory:// counts in one process."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from tests.conftest import _truncate
from tests.ratelimit.conftest import chat_body, client_from, new_user

pytestmark = pytest.mark.storage


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def running(settings: Settings, **changes: object) -> AsyncIterator[FastAPI]:
    await _truncate(settings.database_url or "")
    app = create_app(
        Settings.model_validate({**settings.model_dump(), **changes}),
        migrate=False,
        run_sweeper=False,
    )
    async with app.router.lifespan_context(app):
        yield app


async def storage_errors(client) -> float:
    text = (await client.get("/metrics")).text
    m = re.search(r"^chatkeep_ratelimit_storage_errors_total (\S+)$", text, re.M)
    assert m, "the storage-error counter is not exported"
    return float(m.group(1))


async def test_requests_succeed_when_redis_is_down_and_the_failure_is_counted(settings, caplog):
    down = f"redis://127.0.0.1:{closed_port()}"
    async with running(settings, rate_limit_storage_url=down) as app, client_from(app) as c:
        before = await storage_errors(c)
        _, user = await new_user(app)
        # Twice the chat limit of 3/minute: all answered, none refused, no 500.
        for i in range(6):
            r = await c.post("/api/chat", json=chat_body(f"hi {i}"), headers=user)
            assert r.status_code == 200, r.text
            assert "RateLimit" not in r.headers
        limits = (await c.get("/api/me/limits", headers=user)).json()
        assert all(p["remaining"] is None for p in limits["policies"])
        assert await storage_errors(c) > before
    assert any("rate-limit storage failed" in rec.getMessage() for rec in caplog.records)


async def test_memory_storage_counts_too(settings):
    async with running(settings, rate_limit_storage_url="memory://") as app:
        _, user = await new_user(app)
        async with client_from(app) as c:
            codes = [
                (await c.post("/api/chat", json=chat_body("hi"), headers=user)).status_code
                for _ in range(4)
            ]
    assert codes == [200, 200, 200, 429]


async def test_disabled_means_no_limit_and_no_headers(settings):
    async with running(settings, rate_limit_enabled=False) as app:
        _, user = await new_user(app)
        async with client_from(app) as c:
            for _ in range(5):
                r = await c.post("/api/chat", json=chat_body("hi"), headers=user)
                assert r.status_code == 200
                assert "RateLimit" not in r.headers
            body = (await c.get("/api/me/limits", headers=user)).json()
    assert body["enabled"] is False
    assert all(p["remaining"] is None for p in body["policies"])
