"""A model that answers 50 MB, against two real app instances on one PostgreSQL.

Before replies were bounded, such a reply was stored whole; its once-a-second checkpoint
of the partial reply timed out, which stopped the heartbeats too, and the second instance
failed the first one's healthy turn as stale. Here the reply is written for longer than
TURN_STALE_SECONDS while the other instance's stale-turn check runs: the turn ends well,
cut at the default MAX_REPLY_CHARS and marked, the model is no longer read past it, and
the writing process's memory does not grow with what the model sent. And thirty followers
that never read a long reply (the review's took the process to 2.36 GB) are each dropped
with `error` `slow_reader` while the turn ends well, the process's memory staying bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from tests.conftest import TEST_PASSWORD, _truncate
from tests.fakemodel import FakeModel, Planned, serve_model
from tests.processes import ServerProcess, server_env
from tests.sse import collect, parse_events
from tests.turns.conftest import chat_body, sse_headers
from tests.turns.test_reply_bounds import _dechunk, _events, _read_all

pytestmark = [pytest.mark.process, pytest.mark.storage]

MB = 1024 * 1024
PIECE = "word " * 200  # 1,000 characters
PIECES = 50_000  # 50 MB in all
PIECE_SECONDS = 0.025  # the capped part of the reply takes about 5 s to come
STALE_SECONDS = 2.0
# What the writing process's peak memory (VmHWM) may grow by over the turn.
MEMORY_HEADROOM = 100 * MB
DEFAULT_CAP = Settings.model_fields["max_reply_chars"].default


@pytest.fixture
def model() -> Iterator[tuple[FakeModel, str]]:
    fake = FakeModel(default=Planned(chunks=[PIECE] * PIECES, chunk_seconds=PIECE_SECONDS))
    with serve_model(fake) as server:
        yield fake, f"{server.url}/v1"


@contextlib.contextmanager
def _servers(
    database_url: str, model_url: str, data_dir: Path, count: int, **extra: str
) -> Iterator[list[ServerProcess]]:
    # Every bound at its default but the turn's timing, which is shortened to show
    # staleness, and what `extra` sets.
    env = server_env(
        database_url=database_url,
        data_dir=data_dir,
        secret_key="large-reply-secret-" + "r" * 40,
        drop=("RATE_LIMIT", "TURN_", "MAX_", "LLM_", "SSE_"),
        SWEEPER_ENABLED="false",
        ASSISTANT_BACKEND="openai",
        LLM_BASE_URL=model_url,
        LLM_INTENTS="rules",
        LLM_MAX_RETRIES="0",
        TURN_CHECKPOINT_SECONDS="0.2",
        TURN_STALE_SECONDS=str(STALE_SECONDS),
        TURN_SHUTDOWN_GRACE_SECONDS="0",
        **extra,
    )
    argv = [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", "{port}"]
    servers = [ServerProcess(argv, env) for _ in range(count)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def instances(
    database_url: str, model: tuple[FakeModel, str], tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    await _truncate(database_url)
    with _servers(database_url, model[1], tmp_path, 2) as servers:
        yield servers


def _memory(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


async def _sign_in(base: str) -> dict[str, str]:
    email = f"large-{uuid.uuid4().hex[:10]}@example.com"
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        r = await c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = await c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_a_50_mb_reply_is_cut_stored_bounded_and_never_failed_as_stale(
    instances, model, database_url
):
    fake, _ = model
    a, b = instances
    headers = await _sign_in(a.base)
    async with (
        httpx.AsyncClient(base_url=a.base, timeout=60) as on_a,
        httpx.AsyncClient(base_url=b.base, timeout=60) as on_b,
    ):
        # Warm: the first turn loads the model client and fills caches.
        fake.plan(Planned(text="A short answer."))
        r = await on_a.post("/api/chat", json=chat_body("warm up"), headers=headers)
        assert r.status_code == 200, r.text
        Path(f"/proc/{a.proc.pid}/clear_refs").write_bytes(b"5")  # VmHWM from here
        before = _memory(a.proc.pid)

        started = time.monotonic()
        async with on_a.stream(
            "POST", "/api/chat", json=chat_body("Tell me everything"), headers=sse_headers(headers)
        ) as r:
            events = await collect(r)
        took = time.monotonic() - started
        after = _memory(a.proc.pid)

        done = events[-1]
        assert done.name == "done", (done.name, done.data)
        reply = done.data["reply"]
        assert len(reply) == DEFAULT_CAP
        assert reply == (PIECE * (DEFAULT_CAP // len(PIECE) + 1))[:DEFAULT_CAP]
        assert done.data["truncated"] is True and done.data["stopped"] is False
        # The turn was live for longer than the stale limit, while B looked for stale turns.
        assert took > 2 * STALE_SECONDS, took

        # Stored cut and marked, as the other instance reads it.
        sid = done.data["sessionId"]
        detail = (await on_b.get(f"/api/sessions/{sid}", headers=headers)).json()
        last = detail["messages"][-1]
        assert last["role"] == "assistant" and last["content"] == reply
        assert last["truncated"] is True

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "SELECT status, error, partial_reply FROM chat_turn WHERE session_id = :sid"
                    ),
                    {"sid": sid},
                )
            ).one()
    finally:
        await engine.dispose()
    assert row.status == "done" and row.error is None and row.partial_reply is None
    # The model was no longer read past the cap: most of its 50 MB was never taken.
    assert fake.chunks_sent < PIECES // 10
    # The writing process held the reply, not what the model sent.
    grown = after["VmHWM"] - before["VmRSS"]
    assert grown < FOLLOWERS_MEMORY_HEADROOM, (before, after)


FOLLOWERS = 30
# Two million emoji: 8 MB on the wire, more than a socket's buffers hold, so a follower that
# does not read fills them. Without frames and drops, each held its own copies of it.
EMOJI_PIECE = "\U0001f600" * 1000
LONG_CAP = 2_000_000
# The writer holds the reply (8 MB as text), its checkpoints and its last event: about 85 MB
# of peak growth was measured. Thirty followers each buffering it would be hundreds of MB.
FOLLOWERS_MEMORY_HEADROOM = 150 * MB


def _stalled_follower(port: int, path: str, token: str) -> socket.socket:
    """Follows a turn's events and reads nothing (a small receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {token}\r\n"
        "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode()
    )
    return sock


async def test_followers_that_never_read_a_long_reply_are_dropped_and_memory_stays_flat(
    model, database_url, tmp_path
):
    fake, model_url = model
    await _truncate(database_url)
    with _servers(
        database_url,
        model_url,
        tmp_path,
        1,
        MAX_REPLY_CHARS=str(LONG_CAP),
        SSE_SEND_TIMEOUT_SECONDS="1",
    ) as (a,):
        headers = await _sign_in(a.base)
        followers: list[socket.socket] = []
        try:
            async with httpx.AsyncClient(base_url=a.base, timeout=120) as on_a:
                fake.plan(Planned(text="A short answer."))
                r = await on_a.post("/api/chat", json=chat_body("warm up"), headers=headers)
                assert r.status_code == 200, r.text
                fake.plan(Planned(chunks=[EMOJI_PIECE] * PIECES, chunk_seconds=0.001))
                Path(f"/proc/{a.proc.pid}/clear_refs").write_bytes(b"5")
                before = _memory(a.proc.pid)
                async with on_a.stream(
                    "POST",
                    "/api/chat",
                    json=chat_body("Tell me everything"),
                    headers=sse_headers(headers),
                ) as r:
                    stream = parse_events(r)
                    turn = await anext(stream)
                    sid, tid = turn.data["sessionId"], turn.data["turnId"]
                    path = f"/api/sessions/{sid}/turns/{tid}/events"
                    followers = [
                        _stalled_follower(a.port, path, headers["Authorization"])
                        for _ in range(FOLLOWERS)
                    ]
                    rest = [e async for e in stream]
                after = _memory(a.proc.pid)
            done = rest[-1]
            assert done.name == "done", (done.name, done.data)
            assert len(done.data["reply"]) == LONG_CAP and done.data["truncated"] is True

            # Each follower was dropped with a clear event, not fed the reply without end.
            for sock in followers:
                raw = await asyncio.to_thread(_read_all, sock)
                head, _, chunked = raw.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head[:100]
                events = _events(_dechunk(chunked))
                assert events[-1][0] == "error" and events[-1][1]["code"] == "slow_reader"
                got = sum(len(e[1]["text"]) for e in events if e[0] == "delta")
                assert got < LONG_CAP
        finally:
            for sock in followers:
                sock.close()
    grown = after["VmHWM"] - before["VmRSS"]
    assert grown < FOLLOWERS_MEMORY_HEADROOM, (before, after)
