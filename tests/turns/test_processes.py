"""Real processes: a streaming fake model over HTTP and two app instances on one PostgreSQL.

What only processes show: a reply followed and stopped from the other instance, live
events crossing instances, a client dropped mid-stream, and an instance killed mid-reply.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess, free_port, server_env
from tests.sse import collect, listening, parse_events
from tests.turns.conftest import chat_body, sse_headers

pytestmark = [pytest.mark.process, pytest.mark.storage]

MODEL_SECONDS = 3.0
MODEL_WORDS = 30
REPLY = " ".join(f"word{i}" for i in range(MODEL_WORDS))


@pytest.fixture(scope="module")
def fake_model() -> Iterator[str]:
    port = free_port()
    proc = ServerProcess(
        [
            sys.executable,
            "-m",
            "tests.fakemodel",
            "--port",
            str(port),
            "--seconds",
            str(MODEL_SECONDS),
            "--words",
            str(MODEL_WORDS),
        ],
        dict(os.environ),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/stats", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.proc.poll() is not None:
            raise AssertionError("the fake model did not start")
        time.sleep(0.1)
    try:
        yield f"{base}/v1"
    finally:
        proc.stop()


@pytest.fixture
async def instances(
    database_url: str, fake_model: str, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    await _truncate(database_url)
    env = server_env(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="shared-secret-" + "z" * 40,
        drop=("RATE_LIMIT", "TURN_"),
        ASSISTANT_BACKEND="openai",
        LLM_BASE_URL=fake_model,
        LLM_INTENTS="rules",
        LLM_MAX_RETRIES="0",
        TURN_CHECKPOINT_SECONDS="0.2",
        TURN_STALE_SECONDS="2",
        SSE_HEARTBEAT_SECONDS="0.5",
        TURN_SHUTDOWN_GRACE_SECONDS="0",
    )
    argv = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", "{port}"]
    servers = [ServerProcess(argv, env), ServerProcess(argv, env)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


async def _sign_in(base: str) -> dict[str, str]:
    email = f"proc-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = await c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_a_reply_resumes_on_the_other_instance_and_events_cross_over(instances):
    a, b = instances
    headers = await _sign_in(a.base)
    async with (
        httpx.AsyncClient(base_url=a.base, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base, timeout=30) as on_b,
        listening(on_b, headers) as device_b,
    ):
        async with on_a.stream(
            "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
        ) as r:
            stream = parse_events(r)
            turn = await anext(stream)
            first = await anext(stream)
            # ...and the client drops off instance A.
        sid, tid = turn.data["sessionId"], turn.data["turnId"]
        # The other device hears of it through instance B.
        await device_b.wait_for(lambda e: e.name == "turn" and e.data["turnId"] == tid)
        await device_b.wait_for(lambda e: e.name == "message" and e.data["seq"] == 1)
        # A reload lands on instance B and resumes from the last event it had.
        async with on_b.stream(
            "GET",
            f"/api/sessions/{sid}/turns/{tid}/events",
            headers={**headers, "last-event-id": first.id},
        ) as r2:
            rest = await collect(r2)
        assert rest[-1].name == "done"
        assert first.data["text"] + "".join(e.data["text"] for e in rest[:-1]) == REPLY
        assert rest[-1].data["reply"] == REPLY
        await device_b.wait_for(lambda e: e.name == "turn" and e.data["status"] == "done")
        # Stored whole, though nobody was connected to A when it finished.
        detail = (await on_b.get(f"/api/sessions/{sid}", headers=headers)).json()
        assert [m["content"] for m in detail["messages"]] == ["hello", REPLY]
        assert detail["usage"]["totalTokens"] > 0


async def test_stop_from_the_other_instance(instances):
    a, b = instances
    headers = await _sign_in(a.base)
    async with (
        httpx.AsyncClient(base_url=a.base, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base, timeout=30) as on_b,
    ):
        async with on_a.stream(
            "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
        ) as r:
            stream = parse_events(r)
            turn = await anext(stream)
            await anext(stream)
            sid, tid = turn.data["sessionId"], turn.data["turnId"]
            stop = await on_b.post(f"/api/sessions/{sid}/turns/{tid}/cancel", headers=headers)
            assert stop.status_code == 202
            rest = [e async for e in stream]
        done = rest[-1]
        assert done.name == "done" and done.data["stopped"] is True
        assert REPLY.startswith(done.data["reply"]) and done.data["reply"] != REPLY
        detail = (await on_b.get(f"/api/sessions/{sid}", headers=headers)).json()
        assert detail["messages"][-1]["content"] == done.data["reply"]


async def test_an_instance_killed_mid_reply_frees_the_conversation(instances):
    a, b = instances
    headers = await _sign_in(a.base)
    async with httpx.AsyncClient(base_url=b.base, timeout=30) as on_b:
        async with (
            httpx.AsyncClient(base_url=a.base, timeout=30) as on_a,
            on_a.stream(
                "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
            ) as r,
        ):
            stream = parse_events(r)
            turn = await anext(stream)
            await anext(stream)
            a.kill_hard()
        sid, tid = turn.data["sessionId"], turn.data["turnId"]
        busy = await on_b.post("/api/chat", json=chat_body("again", sid), headers=headers)
        assert busy.status_code == 409  # not stale yet: it might still answer
        async with on_b.stream(
            "GET", f"/api/sessions/{sid}/turns/{tid}/events", headers=headers
        ) as r:
            events = await asyncio.wait_for(collect(r), 30)
        assert events[0].name == "turn" and events[-1].name == "error"
        assert events[-1].data["code"] == "turn_interrupted"
        again = await on_b.post("/api/chat", json=chat_body("again", sid), headers=headers)
        assert again.status_code == 200, again.text
        detail = (await on_b.get(f"/api/sessions/{sid}", headers=headers)).json()
        assert [m["content"] for m in detail["messages"]] == ["hello", "again", REPLY]
        assert [m["seq"] for m in detail["messages"]] == [1, 2, 3]


async def test_sigterm_ends_open_streams_so_the_server_can_stop(instances):
    """Uvicorn waits for open connections before stopping; open event streams end when
    the stop signal arrives (their clients reconnect elsewhere), so it does not wait
    forever. A reply in progress is finished or failed, never left generating."""
    a, b = instances
    headers = await _sign_in(a.base)
    async with (
        httpx.AsyncClient(base_url=a.base, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b.base, timeout=30) as on_b,
        listening(on_a, headers),
    ):
        async with on_a.stream(
            "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
        ) as r:
            stream = parse_events(r)
            turn = await anext(stream)
            os.killpg(a.proc.pid, signal.SIGTERM)
            rest = [e async for e in stream]  # the stream ends: no done, resume elsewhere
        assert all(e.name == "delta" for e in rest)
        code = await asyncio.to_thread(a.proc.wait, 30)  # no hang
        # Uvicorn stops gracefully, then re-raises the signal it caught.
        assert code in (0, -signal.SIGTERM)
        sid, tid = turn.data["sessionId"], turn.data["turnId"]
        async with on_b.stream(
            "GET", f"/api/sessions/{sid}/turns/{tid}/events", headers=headers
        ) as r2:
            final = (await collect(r2))[-1]
        assert final.name in ("done", "error")
        if final.name == "error":
            assert final.data["code"] == "turn_interrupted"
