"""EVENTS_BACKEND=redis: the same events, through a real Redis's pub/sub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.clock import FrozenClock
from app.core.config import Settings
from app.main import create_app
from tests.conftest import _truncate, chat, register
from tests.ratelimit.conftest import redis_url  # noqa: F401  (the fixture)
from tests.sse import listening

pytestmark = [pytest.mark.storage, pytest.mark.redis]


@pytest.fixture
async def redis_app(
    settings: Settings,
    clock: FrozenClock,
    database_url: str,
    redis_url: str,  # noqa: F811
) -> AsyncIterator[FastAPI]:
    await _truncate(database_url)
    application = create_app(
        settings.model_copy(update={"events_backend": "redis", "events_redis_url": redis_url}),
        clock=clock,
        migrate=False,
        run_sweeper=False,
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def app(redis_app: FastAPI) -> FastAPI:  # the `live` server fixture serves `app`
    return redis_app


async def test_events_go_through_redis(live: httpx.AsyncClient, app: FastAPI) -> None:
    assert type(app.state.events).__name__ == "RedisEventBus"
    me = await register(live)
    async with listening(live, me) as device:
        sid = (await chat(live, me, "hello")).json()["sessionId"]
        await device.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
        assert device.of("message") == [
            {"sessionId": sid, "seq": 1, "role": "user"},
            {"sessionId": sid, "seq": 2, "role": "assistant"},
        ]
