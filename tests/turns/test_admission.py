"""A burst of messages waits in line for a place to open, holding no database connection."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from app.core.config import Settings
from tests.conftest import register
from tests.turns.conftest import chat_body

pytestmark = pytest.mark.storage


@pytest.fixture
def queue_wait() -> float:
    """TURN_OPEN_WAIT_SECONDS: short, so a test can wait it out."""
    return 0.5


@pytest.fixture
def settings(settings: Settings, queue_wait: float) -> Settings:
    # One pooled connection, and one place to open a turn.
    return settings.model_copy(
        update={
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": max(1.0, queue_wait),
            "turn_open_slots": 1,
            "turn_open_wait_seconds": queue_wait,
        }
    )


async def _until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.01)


async def _messages(sessionmaker) -> int:
    async with sessionmaker() as db:
        return (await db.execute(sa.text("SELECT count(*) FROM chat_message"))).scalar_one()


# The line and the pool wait long here, so that however slow the machine, every message
# gets its place; the refusal after a short wait is the next test's.
@pytest.mark.parametrize("queue_wait", [60.0])
async def test_queued_messages_hold_no_connection_and_all_open_in_turn(client, app, sessionmaker):
    headers = await register(client)
    admission = app.state.turn_admission
    pool = app.state.engine.pool
    held = await admission.acquire()  # every place taken: the next messages queue
    sends = [
        asyncio.create_task(client.post("/api/chat", json=chat_body(f"post #{i}"), headers=headers))
        for i in range(6)
    ]
    await _until(lambda: admission.waiting == len(sends), "six messages in line")
    # Six messages in line, and the pool's only connection is free: none of them holds it,
    # and another route gets it.
    assert pool.checkedout() == 0
    listed = await asyncio.wait_for(client.get("/api/sessions", headers=headers), 30)
    assert listed.status_code == 200
    assert admission.waiting == len(sends)
    held.release()
    answers = await asyncio.gather(*sends)
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert len({r.json()["sessionId"] for r in answers}) == 6
    assert await _messages(sessionmaker) == 12
    assert admission.waiting == 0


async def test_a_message_that_waits_too_long_is_refused_and_nothing_is_stored(
    client, app, sessionmaker
):
    headers = await register(client)
    held = await app.state.turn_admission.acquire()
    try:
        r = await client.post("/api/chat", json=chat_body("hello"), headers=headers)
    finally:
        held.release()
    assert r.status_code == 503
    assert r.json()["code"] == "server_busy"
    assert r.headers["Retry-After"] == "2"
    assert "Nothing was saved" in r.json()["detail"]
    assert await _messages(sessionmaker) == 0
    # The place is free again: the same message now goes through.
    again = await client.post("/api/chat", json=chat_body("hello"), headers=headers)
    assert again.status_code == 200
    assert await _messages(sessionmaker) == 2


async def test_a_refused_request_gives_its_place_back(client, app):
    headers = await register(client)
    bad = await client.post("/api/chat", json={"messages": []}, headers=headers)
    assert bad.status_code == 422
    unsigned = await client.post("/api/chat", json=chat_body("hello"))
    assert unsigned.status_code == 401
    # Had either kept its place, this one would wait out its 0.5 s and be refused.
    ok = await client.post("/api/chat", json=chat_body("hello"), headers=headers)
    assert ok.status_code == 200
