from __future__ import annotations

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app
from tests.conftest import _truncate, chat, register


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


@pytest.fixture
async def production_app(settings, clock, database_url):
    async def build(**changes):
        await _truncate(database_url)
        return create_app(
            settings.model_copy(update={"app_env": "production", **changes}),
            clock=clock,
            migrate=False,
            run_sweeper=False,
        )

    return build


async def _get(app, path, **headers):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path, headers=headers)


async def test_metrics_are_off_in_production_without_a_token(production_app):
    app = await production_app(metrics_token=None)
    off = await _get(app, "/metrics")
    missing = await _get(app, "/no-such-page")
    assert off.status_code == missing.status_code == 404
    assert off.json() == missing.json()
    assert "chatkeep_" not in off.text


async def test_metrics_in_production_need_the_token(production_app):
    app = await production_app(metrics_token="scrape-" + "t" * 30)
    assert (await _get(app, "/metrics")).status_code == 401
    wrong = await _get(app, "/metrics", authorization="Bearer nope")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "metrics_token_required"
    ok = await _get(app, "/metrics", authorization="Bearer scrape-" + "t" * 30)
    assert ok.status_code == 200
    assert "chatkeep_users" in ok.text


async def test_database_figures_are_read_once_per_refresh_interval(app, client, clock, settings):
    await register(client)
    assert "chatkeep_users 1.0" in (await client.get("/metrics")).text
    await register(client)
    # Within the interval the figures are the ones already read...
    clock.advance(settings.metrics_database_refresh_seconds / 2)
    assert "chatkeep_users 1.0" in (await client.get("/metrics")).text
    # ...and read again once it has passed.
    clock.advance(settings.metrics_database_refresh_seconds)
    assert "chatkeep_users 2.0" in (await client.get("/metrics")).text
