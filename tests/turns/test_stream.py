"""Streamed turns as a client sees them: events, replay, stop, dropped clients, one reply
at a time per conversation, the in-flight cap, failures."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa

from app.assistant.base import AssistantError
from tests.assistants import RecordingAssistant, SlowAssistant
from tests.conftest import chat, register
from tests.sse import collect, parse_events
from tests.turns.conftest import chat_body, sse_headers

pytestmark = pytest.mark.storage


async def _turn_rows(sessionmaker, sid: str) -> list[tuple[str, int, int | None]]:
    async with sessionmaker() as db:
        rows = await db.execute(
            sa.text(
                "SELECT status, user_seq, reply_seq FROM chat_turn "
                "WHERE session_id = :sid ORDER BY started_at, user_seq"
            ),
            {"sid": sid},
        )
        return [tuple(r) for r in rows]


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_a_streamed_turn_sends_turn_deltas_and_done_with_increasing_ids(live, app):
    headers = await register(live)
    async with live.stream(
        "POST",
        "/api/chat",
        json=chat_body("Create a Facebook post about Diwali"),
        headers=sse_headers(headers),
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = await collect(r)
    names = [e.name for e in events]
    assert names[0] == "turn" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) > 4  # the built-in streams in chunks
    ids = [int(e.id) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    turn, done = events[0].data, events[-1].data
    assert set(turn) == {"sessionId", "turnId"}
    assert set(done) == {"reply", "imageUrl", "sessionId", "seq", "stopped", "truncated", "usage"}
    assert "".join(e.data["text"] for e in events[1:-1]) == done["reply"]
    assert done["seq"] == 2 and done["stopped"] is False and done["usage"] is None
    detail = (await live.get(f"/api/sessions/{done['sessionId']}", headers=headers)).json()
    assert detail["messages"][-1]["content"] == done["reply"]
    assert detail["activeTurn"] is None


async def test_replay_from_any_event_adds_up_to_the_same_reply(live, app):
    headers = await register(live)
    async with live.stream(
        "POST",
        "/api/chat",
        json=chat_body("Tweet about our summer sale"),
        headers=sse_headers(headers),
    ) as r:
        events = await collect(r)
    sid, tid = events[0].data["sessionId"], events[0].data["turnId"]
    url = f"/api/sessions/{sid}/turns/{tid}/events"
    async with live.stream("GET", url, headers=headers) as r:
        replay = await collect(r)
    assert replay[0].name == "turn" and replay[-1].data == events[-1].data
    reply = events[-1].data["reply"]
    for cut in (events[1], events[len(events) // 2]):
        async with live.stream("GET", url, headers={**headers, "last-event-id": cut.id}) as r:
            rest = await collect(r)
        assert rest[0].name == "delta"  # nothing before the asked id again
        assert reply[: int(cut.id)] + "".join(e.data["text"] for e in rest[:-1]) == reply
        assert rest[-1].name == "done"
    async with live.stream("GET", url, headers={**headers, "last-event-id": "x1"}) as r:
        assert r.status_code == 422
        assert (await r.aread()) and r.headers["content-type"] == "application/problem+json"


async def test_a_reply_still_being_written_can_be_followed_and_is_announced(live, app):
    slow = SlowAssistant(words=tuple(f"w{i} " for i in range(12)), delay=0.05)
    app.state.assistant = slow
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
    ) as first:
        stream = parse_events(first)
        turn = await anext(stream)
        delta = await anext(stream)
        sid, tid = turn.data["sessionId"], turn.data["turnId"]
        detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
        assert detail["activeTurn"]["turnId"] == tid
        assert detail["activeTurn"]["status"] == "generating"
        # A reloaded page resumes from what it had.
        async with live.stream(
            "GET",
            f"/api/sessions/{sid}/turns/{tid}/events",
            headers={**headers, "last-event-id": delta.id},
        ) as second:
            rest = await collect(second)
        mine = [delta] + [e async for e in stream if e.name in ("delta", "done")]
    reply = "".join(f"w{i} " for i in range(12))
    assert rest[-1].data["reply"] == reply == mine[-1].data["reply"]
    assert delta.data["text"] + "".join(e.data["text"] for e in rest[:-1]) == reply


async def test_a_dropped_client_never_stops_the_reply(live, app, sessionmaker):
    slow = SlowAssistant(words=tuple(f"w{i} " for i in range(10)), delay=0.05)
    app.state.assistant = slow
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
    ) as r:
        stream = parse_events(r)
        turn = await anext(stream)
        await anext(stream)  # the first delta, then the client goes away
    sid = turn.data["sessionId"]

    async def stored() -> bool:
        return await _turn_rows(sessionmaker, sid) == [("done", 1, 2)]

    await _wait_for(stored)
    detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert detail["messages"][-1]["content"] == "".join(f"w{i} " for i in range(10))


async def test_stop_keeps_what_was_written(live, app, sessionmaker):
    slow = SlowAssistant(words=tuple(f"w{i} " for i in range(200)), delay=0.05)
    app.state.assistant = slow
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
    ) as r:
        stream = parse_events(r)
        turn = await anext(stream)
        await anext(stream)
        sid, tid = turn.data["sessionId"], turn.data["turnId"]
        stop = await live.post(f"/api/sessions/{sid}/turns/{tid}/cancel", headers=headers)
        assert stop.status_code == 202
        assert stop.json() == {"turnId": tid, "status": "generating", "stopRequested": True}
        rest = [e async for e in stream]
    done = rest[-1]
    assert done.name == "done" and done.data["stopped"] is True
    written = done.data["reply"]
    assert written.startswith("w0 ") and len(written.split()) < 200
    assert await _turn_rows(sessionmaker, sid) == [("stopped", 1, 2)]
    detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert detail["messages"][-1]["content"] == written
    assert detail["messages"][-1]["stopped"] is True
    assert detail["messages"][0]["stopped"] is False
    again = await live.post(f"/api/sessions/{sid}/turns/{tid}/cancel", headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "stopped"


async def test_one_reply_at_a_time_per_conversation(live, app, sessionmaker):
    slow = SlowAssistant(words=("a ", "b ", "c"), delay=5)
    app.state.assistant = slow
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("first"), headers=sse_headers(headers)
    ) as r:
        stream = parse_events(r)
        turn = await anext(stream)
        sid = turn.data["sessionId"]
        busy = await chat(live, headers, "second", session_id=sid)
        assert busy.status_code == 409
        assert busy.json()["code"] == "turn_in_progress"
        assert busy.json()["turnId"] == turn.data["turnId"]
        assert busy.headers["retry-after"] == "2"
        slow.release.set()
        assert [e.name async for e in stream][-1] == "done"
    ok = await chat(live, headers, "second", session_id=sid)
    assert ok.status_code == 200
    detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert [m["seq"] for m in detail["messages"]] == [1, 2, 3, 4]
    assert [m["content"] for m in detail["messages"]][::2] == ["first", "second"]


async def test_the_in_flight_cap_refuses_before_saving_anything(live, app, sessionmaker):
    slow = SlowAssistant(words=("a ", "b"), delay=5)
    app.state.assistant = slow
    app.state.turns.max_in_flight = 1
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("first"), headers=sse_headers(headers)
    ) as r:
        stream = parse_events(r)
        await anext(stream)
        refused = await chat(live, headers, "another conversation")
        assert refused.status_code == 503
        assert refused.json()["code"] == "assistant_busy"
        assert int(refused.headers["retry-after"]) > 0
        slow.release.set()
        assert [e.name async for e in stream][-1] == "done"
    async with sessionmaker() as db:
        texts = (await db.execute(sa.text("SELECT content FROM chat_message"))).scalars().all()
    assert "another conversation" not in texts


async def test_a_failed_reply_ends_the_stream_with_a_problem_and_keeps_the_message(
    live, app, sessionmaker
):
    app.state.assistant = RecordingAssistant(fail=AssistantError("provider returned 500"))
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("are you there?"), headers=sse_headers(headers)
    ) as r:
        events = await collect(r)
    assert [e.name for e in events] == ["turn", "error"]
    problem = events[-1].data
    assert problem["status"] == 502 and problem["code"] == "upstream_error"
    assert "provider returned 500" in problem["detail"]
    sid = events[0].data["sessionId"]
    assert await _turn_rows(sessionmaker, sid) == [("failed", 1, None)]
    detail = (await live.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert [m["content"] for m in detail["messages"]] == ["are you there?"]
    # The stored failure replays the same way, anywhere.
    tid = events[0].data["turnId"]
    async with live.stream("GET", f"/api/sessions/{sid}/turns/{tid}/events", headers=headers) as r:
        assert [e.name for e in await collect(r)] == ["turn", "error"]


async def test_another_users_turn_is_a_404_like_a_missing_one(live, app):
    mine = await register(live)
    theirs = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(mine)
    ) as r:
        events = await collect(r)
    sid, tid = events[0].data["sessionId"], events[0].data["turnId"]
    missing = "00000000-0000-4000-8000-000000000000"
    for who, turn_id in ((theirs, tid), (mine, missing), (mine, "not-a-uuid")):
        r1 = await live.get(f"/api/sessions/{sid}/turns/{turn_id}/events", headers=who)
        r2 = await live.post(f"/api/sessions/{sid}/turns/{turn_id}/cancel", headers=who)
        for r in (r1, r2):
            assert r.status_code == 404
            assert r.json()["code"] == "turn_not_found"


async def test_heartbeats_while_the_model_is_silent(live, app, settings):
    settings.sse_heartbeat_seconds = 0.1
    slow = SlowAssistant(words=("a ", "b"), delay=0.6)
    app.state.assistant = slow
    headers = await register(live)
    pings: list[str] = []
    async with live.stream(
        "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
    ) as r:
        events = [e async for e in parse_events(r, pings=pings)]
    assert events[-1].name == "done"
    assert len(pings) >= 2 and set(pings) == {": ping"}


async def test_without_the_accept_header_the_json_answer_is_the_seeds(client, app):
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"reply", "imageUrl", "sessionId"}


async def test_busy_and_in_progress_are_problems_before_any_byte_of_a_stream(live, app):
    headers = await register(live)
    r = await live.post(
        "/api/chat",
        json={"messages": [{"role": "assistant", "content": "hi"}]},
        headers=sse_headers(headers),
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = await live.post("/api/chat", json=chat_body("hi"), headers=sse_headers({}))
    assert r.status_code == 401


async def test_the_stream_of_a_session_expired_meanwhile_says_so(live, app, clock, settings):
    headers = await register(live)
    sid = (await chat(live, headers, "hello")).json()["sessionId"]
    clock.advance(settings.session_ttl_seconds + 1)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("back again", sid), headers=sse_headers(headers)
    ) as r:
        events = await collect(r)
    assert events[0].data["expiredSessionId"] == sid
    assert events[-1].data["sessionId"] != sid


async def test_a_client_can_read_the_stream_without_httpx_streaming(client, app):
    """ASGI transports that buffer the whole answer still get a well-formed stream."""
    headers = await register(client)
    r = await client.post("/api/chat", json=chat_body("hello"), headers=sse_headers(headers))
    blocks = [b for b in r.text.split("\n\n") if b]
    assert blocks[0].startswith("id: 0\nevent: turn\n")
    assert "event: done" in blocks[-1]
    assert isinstance(r, httpx.Response)


async def test_deleting_the_conversation_mid_reply_ends_the_stream_with_a_problem(
    live, app, sessionmaker
):
    slow = SlowAssistant(words=("a ", "b ", "c"), delay=5)
    app.state.assistant = slow
    headers = await register(live)
    async with live.stream(
        "POST", "/api/chat", json=chat_body("hello"), headers=sse_headers(headers)
    ) as r:
        stream = parse_events(r)
        turn = await anext(stream)
        sid = turn.data["sessionId"]
        # Deleted for good (a conversation in the trash keeps its reply).
        gone = await live.delete(f"/api/sessions/{sid}?permanent=true", headers=headers)
        assert gone.status_code == 204
        slow.release.set()
        last = [e async for e in stream][-1]
    assert last.name == "error" and last.data["code"] == "session_not_found"
    async with sessionmaker() as db:
        left = (await db.execute(sa.text("SELECT count(*) FROM chat_message"))).scalar_one()
    assert left == 0


async def test_a_retry_racing_its_first_attempt_on_one_conversation_joins_it(
    client, app, sessionmaker
):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    headers = await register(client)
    sid = (await chat(client, headers, "start")).json()["sessionId"]
    keyed = {**headers, "Idempotency-Key": "same-conversation"}
    results = await asyncio.gather(
        *(client.post("/api/chat", json=chat_body("again", sid), headers=keyed) for _ in range(6))
    )
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    assert len({r.json()["reply"] for r in results}) == 1
    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert [m["content"] for m in detail["messages"]] == [
        "start",
        "reply to start",
        "again",
        "reply to again",
    ]
