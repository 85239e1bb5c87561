"""Every pooled connection busy: 503 server_busy with Retry-After, counted apart from outages."""

from __future__ import annotations

import httpx
import pytest

from app.core import metrics
from app.main import create_app
from tests.conftest import register

pytestmark = pytest.mark.storage


async def test_a_saturated_pool_answers_server_busy(settings, database_url):
    busy = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_seconds": 0.3}
    )
    app = create_app(busy, migrate=False, run_sweeper=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            h = await register(c)
            before_busy = metrics.SERVER_BUSY._value.get()
            before_down = metrics.DATABASE_UNAVAILABLE._value.get()
            async with app.state.engine.connect():  # the pool's only connection
                r = await c.get("/api/sessions", headers=h)
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "server_busy"
            assert int(r.headers["retry-after"]) == busy.db_retry_after_seconds
            assert metrics.SERVER_BUSY._value.get() == before_busy + 1
            assert metrics.DATABASE_UNAVAILABLE._value.get() == before_down
            assert "chatkeep_server_busy_total" in (await c.get("/metrics")).text
            # Free again: served as usual.
            assert (await c.get("/api/sessions", headers=h)).status_code == 200
