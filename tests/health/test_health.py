from __future__ import annotations

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.conftest import chat, register


async def test_healthz_and_metrics(client):
    headers = await register(client)
    await chat(client, headers, "hello")
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok"}
    text = (await client.get("/metrics")).text
    assert 'chatkeep_sessions{status="active"} 1.0' in text
    assert "chatkeep_messages 2.0" in text
    assert 'chatkeep_chat_turns_total{outcome="ok"}' in text
    assert "chatkeep_http_request_duration_seconds_bucket" in text
    assert "chatkeep_sweeper_runs_total" in text


@pytest.fixture
async def app_without_database(tmp_path):
    # Nothing listens on port 1: every connection attempt is refused at once.
    settings = Settings(
        app_env="test",
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        data_dir=tmp_path,
        secret_key="s" * 40,
        sweeper_enabled=False,
    )
    app = create_app(settings, migrate=False, run_sweeper=False)
    async with app.router.lifespan_context(app):
        yield app


async def test_database_down_gives_503_with_retry_after(app_without_database):
    transport = httpx.ASGITransport(app=app_without_database, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        health = await c.get("/healthz")
        assert health.status_code == 503
        assert health.headers["retry-after"]
        login = await c.post(
            "/auth/jwt/login", data={"username": "a@b.co", "password": "whatever1"}
        )
        assert login.status_code == 503
        assert login.headers["retry-after"]
        assert login.json()["code"] == "database_unavailable"
        assert "Traceback" not in login.text
