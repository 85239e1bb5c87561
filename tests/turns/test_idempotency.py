"""Exactly once: a retried message never starts a second turn, even when retries race."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from app.conversations.schemas import ChatRequest
from app.turns.opening import legacy_request_hash
from app.turns.recovery import fail_stale_turns
from tests.assistants import RecordingAssistant, SlowAssistant
from tests.conftest import register
from tests.sse import collect, parse_events
from tests.turns.conftest import chat_body, sse_headers

pytestmark = pytest.mark.storage


async def _counts(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as db:
        turns = (await db.execute(sa.text("SELECT count(*) FROM chat_turn"))).scalar_one()
        messages = (await db.execute(sa.text("SELECT count(*) FROM chat_message"))).scalar_one()
    return turns, messages


async def test_a_retry_with_the_same_key_returns_the_first_result(client, app, sessionmaker):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    headers = await register(client)
    keyed = {**headers, "Idempotency-Key": "msg-0001"}
    first = await client.post("/api/chat", json=chat_body("hello"), headers=keyed)
    again = await client.post("/api/chat", json=chat_body("hello"), headers=keyed)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(recorder.turns) == 1
    assert await _counts(sessionmaker) == (1, 2)


async def test_the_same_key_for_another_body_is_refused(client, app, sessionmaker):
    headers = await register(client)
    keyed = {**headers, "Idempotency-Key": "msg-0002"}
    assert (await client.post("/api/chat", json=chat_body("hello"), headers=keyed)).is_success
    r = await client.post("/api/chat", json=chat_body("something else"), headers=keyed)
    assert r.status_code == 422
    assert r.json()["code"] == "idempotency_key_reused"
    assert await _counts(sessionmaker) == (1, 2)
    # Keys belong to their user: another user may use the same one.
    other = {**(await register(client)), "Idempotency-Key": "msg-0002"}
    assert (await client.post("/api/chat", json=chat_body("mine"), headers=other)).is_success


async def test_racing_retries_start_one_turn(client, app, sessionmaker):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    headers = await register(client)
    keyed = {**headers, "Idempotency-Key": "race-1"}
    results = await asyncio.gather(
        *(client.post("/api/chat", json=chat_body("only once"), headers=keyed) for _ in range(8))
    )
    assert {r.status_code for r in results} == {200}
    assert len({r.json()["sessionId"] for r in results}) == 1
    assert {r.json()["reply"] for r in results} == {"reply to only once"}
    assert len(recorder.turns) == 1
    assert await _counts(sessionmaker) == (1, 2)


async def test_a_streamed_retry_joins_the_first_stream(live, app, sessionmaker):
    slow = SlowAssistant(words=tuple(f"w{i} " for i in range(8)), delay=0.05)
    app.state.assistant = slow
    headers = sse_headers(await register(live), **{"Idempotency-Key": "stream-1"})
    async with live.stream("POST", "/api/chat", json=chat_body("hi"), headers=headers) as first:
        stream = parse_events(first)
        turn = await anext(stream)
        # The connection dropped; the client sends the same request again.
        async with live.stream("POST", "/api/chat", json=chat_body("hi"), headers=headers) as r:
            joined = await collect(r)
    assert joined[0].name == "turn" and joined[0].data["turnId"] == turn.data["turnId"]
    assert joined[-1].data["reply"] == "".join(f"w{i} " for i in range(8))
    assert await _counts(sessionmaker) == (1, 2)


async def test_a_retry_of_a_failed_turn_gets_the_same_failure(client, app, sessionmaker, clock):
    """The turn's process died (no heartbeat): the retry learns so, and says to send again
    with a new key rather than silently starting over."""
    slow = SlowAssistant(words=("a",), delay=30)
    app.state.assistant = slow
    headers = await register(client)
    keyed = {**headers, "Idempotency-Key": "dies-1"}
    task = asyncio.create_task(client.post("/api/chat", json=chat_body("hi"), headers=keyed))
    await asyncio.wait_for(slow.started.wait(), 30)
    # The runner dies: its task goes, nothing heartbeats any more.
    for live in list(app.state.turns.live.values()):
        app.state.turns.live.pop(live.id)
    clock.advance(120)
    failed = await fail_stale_turns(
        sessionmaker=sessionmaker, bus=app.state.events, now=clock.now(), stale_seconds=30
    )
    assert failed == 1
    r = await client.post("/api/chat", json=chat_body("hi"), headers=keyed)
    assert r.status_code == 503
    assert r.json()["code"] == "turn_interrupted"
    slow.release.set()
    await task
    async with sessionmaker() as db:
        status = (await db.execute(sa.text("SELECT status FROM chat_turn"))).scalar_one()
    assert status == "failed"


async def test_bad_keys_are_refused(client, app):
    headers = await register(client)
    for key in ("", "x" * 201, "na\u00efve-key".encode()):
        r = await client.post(
            "/api/chat", json=chat_body("hi"), headers={**headers, "Idempotency-Key": key}
        )
        assert r.status_code == 422, key
        assert r.json()["code"] == "invalid_idempotency_key"


async def _stored_hash(sessionmaker) -> str:
    async with sessionmaker() as db:
        return (await db.execute(sa.text("SELECT request_hash FROM chat_turn"))).scalar_one()


async def test_the_stored_request_hash_does_not_confirm_a_guessed_message(
    client, app, sessionmaker
):
    headers = await register(client)
    keyed = {**headers, "Idempotency-Key": "keyed-1"}
    first = await client.post("/api/chat", json=chat_body("my secret plan"), headers=keyed)
    stored = await _stored_hash(sessionmaker)
    # Someone reading the table who guesses the message cannot check the guess by hashing it.
    guess = ChatRequest.model_validate(chat_body("my secret plan")).model_dump(mode="json")
    assert stored != legacy_request_hash(guess)
    assert len(stored) == 64
    # Retries still compare correctly.
    again = await client.post("/api/chat", json=chat_body("my secret plan"), headers=keyed)
    assert again.json() == first.json()
    other = await client.post("/api/chat", json=chat_body("another plan"), headers=keyed)
    assert other.json()["code"] == "idempotency_key_reused"


async def test_a_retry_of_a_turn_stored_before_keyed_hashes_still_matches(
    client, app, sessionmaker
):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    headers = await register(client)
    keyed = {**headers, "Idempotency-Key": "before-upgrade"}
    first = await client.post("/api/chat", json=chat_body("hello"), headers=keyed)
    # The row as the previous version wrote it: a plain SHA-256 of the body (whose
    # fields did not include `model`, `restore` nor `temporary` yet; without them a body
    # hashes the same).
    body = ChatRequest.model_validate(chat_body("hello")).model_dump(
        mode="json", exclude={"restore", "temporary"}
    )
    del body["model"]
    old = legacy_request_hash(body)
    async with sessionmaker() as db:
        await db.execute(sa.text("UPDATE chat_turn SET request_hash = :h"), {"h": old})
        await db.commit()
    again = await client.post("/api/chat", json=chat_body("hello"), headers=keyed)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len(recorder.turns) == 1
    other = await client.post("/api/chat", json=chat_body("not hello"), headers=keyed)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
