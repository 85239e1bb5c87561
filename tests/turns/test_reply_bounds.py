"""Bounds on a model's reply: the reply is cut at MAX_REPLY_CHARS, the heartbeat is written
apart from the partial reply, and a follower that does not read is dropped."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from app.assistant.base import ReplyOutput, TextAssistant, TurnInput
from app.core import sse
from app.core.metrics import SSE_SLOW_READERS
from app.turns import recovery
from tests.assistant.localserver import LocalServer
from tests.assistant.test_openai import use_llm
from tests.assistants import SlowAssistant
from tests.conftest import register
from tests.fakemodel import FakeModel, Planned, serve_model
from tests.sse import collect, parse_events
from tests.turns.conftest import chat_body, sse_headers

pytestmark = pytest.mark.storage

CAP = 5_000


@pytest.fixture
def llm() -> Iterator[tuple[FakeModel, LocalServer]]:
    model = FakeModel()
    with serve_model(model) as server:
        yield model, server


async def _turn(sessionmaker: Any, sid: str) -> Any:
    async with sessionmaker() as db:
        return (
            await db.execute(
                sa.text(
                    "SELECT id, status, heartbeat_at, partial_reply FROM chat_turn "
                    "WHERE session_id = :sid"
                ),
                {"sid": sid},
            )
        ).one()


async def _wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_a_reply_far_over_the_cap_is_cut_marked_and_the_model_no_longer_read(
    app, settings, live, sessionmaker, llm
):
    model, server = llm
    use_llm(app, settings, server, max_reply_chars=CAP)
    app.state.turns.max_reply_chars = CAP
    piece = "word " * 200  # 1,000 characters
    total = 50_000  # 50 MB in all
    model.plan(Planned(chunks=[piece] * total))
    headers = await register(live)
    async with live.stream(
        "POST",
        "/api/chat",
        json=chat_body("When is the best time to post on LinkedIn?"),
        headers=sse_headers(headers),
    ) as r:
        events = await collect(r)
    done = events[-1]
    assert done.name == "done", done.data
    reply = done.data["reply"]
    assert reply == (piece * (CAP // len(piece) + 1))[:CAP]
    assert done.data["truncated"] is True and done.data["stopped"] is False
    assert "".join(e.data["text"] for e in events if e.name == "delta") == reply
    sid = done.data["sessionId"]
    row = await _turn(sessionmaker, sid)
    assert row.status == "done" and row.partial_reply is None
    detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
    last = detail["messages"][-1]
    assert last["content"] == reply and last["truncated"] is True and last["stopped"] is False
    assert detail["messages"][0]["truncated"] is False
    # Replayed from storage, the reply is still marked.
    turn_id = events[0].data["turnId"]
    url = f"/api/sessions/{sid}/turns/{turn_id}/events"
    async with live.stream("GET", url, headers=headers) as r:
        replay = await collect(r)
    assert replay[-1].data["truncated"] is True and replay[-1].data["reply"] == reply
    # The model was no longer read: most of its 50 MB was never taken.
    assert model.chunks_sent < total


HOLD_PARTIALS = """
CREATE OR REPLACE FUNCTION test_hold_partial_reply() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(424242);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_hold_partial_reply BEFORE UPDATE OF partial_reply ON chat_turn
    FOR EACH ROW EXECUTE FUNCTION test_hold_partial_reply();
"""
RELEASE_PARTIALS = """
DROP TRIGGER IF EXISTS test_hold_partial_reply ON chat_turn;
DROP FUNCTION IF EXISTS test_hold_partial_reply();
"""


async def test_a_partial_reply_write_that_hangs_never_makes_the_turn_look_stale(
    app, settings, live, sessionmaker, clock
):
    """A write of partial text is held (a trigger waits on a lock another connection
    holds); each checkpoint's heartbeat still goes through, so no other instance's stale
    check fails the turn, and the turn ends well once the write can go on."""
    slow = SlowAssistant(words=tuple(f"w{i} " for i in range(4)), delay=3600)
    app.state.assistant = slow
    runner = app.state.turns
    headers = await register(live)
    async with sessionmaker() as ddl:
        function, trigger = HOLD_PARTIALS.split("CREATE TRIGGER")
        await ddl.execute(sa.text(function))
        await ddl.execute(sa.text("CREATE TRIGGER" + trigger))
        await ddl.commit()
    holder = sessionmaker()
    try:
        await holder.execute(sa.text("SELECT pg_advisory_xact_lock(424242)"))
        async with live.stream(
            "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
        ) as r:
            stream = parse_events(r)
            turn = await anext(stream)
            delta = await anext(stream)
            assert delta.data["text"] == "w0 "
            sid = turn.data["sessionId"]
            for _ in range(2):
                clock.advance(settings.turn_stale_seconds * 2)
                await asyncio.wait_for(runner.checkpoint_once(), 60)
                row = await _turn(sessionmaker, sid)
                assert row.heartbeat_at == clock.now()
                assert row.partial_reply is None  # its write was held, and given up
                failed = await recovery.fail_stale_turns(
                    sessionmaker=sessionmaker,
                    bus=app.state.events,
                    now=clock.now(),
                    stale_seconds=settings.turn_stale_seconds,
                )
                assert failed == 0
                assert (await _turn(sessionmaker, sid)).status == "generating"
            await holder.rollback()  # the write can go on
            await asyncio.wait_for(runner.checkpoint_once(), 60)
            assert (await _turn(sessionmaker, sid)).partial_reply == "w0 "
            slow.release.set()
            rest = [e async for e in stream]
        assert rest[-1].name == "done" and rest[-1].data["reply"] == "w0 w1 w2 w3 "
        assert (await _turn(sessionmaker, sid)).status == "done"
    finally:
        await holder.rollback()
        await holder.close()
        async with sessionmaker() as ddl:
            for statement in RELEASE_PARTIALS.strip().split(";\n"):
                await ddl.execute(sa.text(statement.strip().rstrip(";")))
            await ddl.commit()


@dataclass
class FloodAssistant(TextAssistant):
    """Writes a long reply as fast as it can: `count` pieces of 16,384 emoji."""

    name: str = "flood"
    count: int = 150

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        piece = "\U0001f600" * 16_384  # 4 bytes each on the wire
        for _ in range(self.count):
            out.write(piece)
            await asyncio.sleep(0)


def _dechunk(body: bytes) -> bytes:
    """An HTTP/1.1 chunked body, complete or cut off."""
    out = bytearray()
    while body:
        head, sep, rest = body.partition(b"\r\n")
        if not sep:
            break
        size = int(head.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def _events(raw: bytes) -> list[tuple[str, Any, str | None]]:
    events = []
    for block in raw.decode().split("\n\n"):
        name, data, event_id = None, None, None
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line.startswith("id: "):
                event_id = line[4:]
        if name is not None:
            events.append((name, data, event_id))
    return events


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(60)
    chunks = []
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def test_a_follower_that_does_not_read_is_dropped_while_the_turn_completes(
    app, settings, live, live_url, sessionmaker, monkeypatch
):
    flood = FloodAssistant()
    app.state.assistant = flood
    app.state.turns.max_reply_chars = 16_384 * flood.count
    settings.sse_send_timeout_seconds = 0.5
    monkeypatch.setattr(sse, "SLOW_READER_GRACE_SECONDS", 120.0)
    headers = await register(live)
    dropped_before = SSE_SLOW_READERS._value.get()
    host, port = live_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    try:
        body = json.dumps(chat_body("hello")).encode()
        request = (
            f"POST /api/chat HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            f"Authorization: {headers['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        sock.sendall(request)

        async def dropped() -> bool:
            return SSE_SLOW_READERS._value.get() > dropped_before

        async def done() -> bool:
            async with sessionmaker() as db:
                statuses = (
                    (await db.execute(sa.text("SELECT status FROM chat_turn"))).scalars().all()
                )
            return statuses == ["done"]

        # The client reads nothing: the stream is dropped, and the turn ends all the same.
        await _wait_for(dropped)
        await _wait_for(done)
        raw = await asyncio.to_thread(_read_all, sock)
    finally:
        sock.close()
    head, _, chunked = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    events = _events(_dechunk(chunked))
    assert events[0][0] == "turn"
    name, problem, event_id = events[-1]
    assert name == "error" and problem["code"] == "slow_reader" and event_id is None
    deltas = [e for e in events if e[0] == "delta"]
    assert all(len(e[1]["text"]) <= sse.MAX_DELTA_CHARS for e in deltas)
    got = "".join(e[1]["text"] for e in deltas)
    # It resumes from the last event it saw, and the text adds up to the stored reply.
    sid, tid = events[0][1]["sessionId"], events[0][1]["turnId"]
    resume = {**headers, "last-event-id": deltas[-1][2] if deltas else "0"}
    async with live.stream("GET", f"/api/sessions/{sid}/turns/{tid}/events", headers=resume) as r:
        rest = await collect(r)
    assert rest[-1].name == "done"
    reply = rest[-1].data["reply"]
    assert len(got) < len(reply) == 16_384 * flood.count
    assert got + "".join(e.data["text"] for e in rest if e.name == "delta") == reply
