"""Conversations as trees: edit, regenerate, move the head, and what the model is given."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.assistant.base import AssistantError
from tests.assistants import RecordingAssistant, SlowAssistant
from tests.conftest import chat, register
from tests.sse import collect, listening, parse_events
from tests.turns.conftest import sse_headers

pytestmark = pytest.mark.storage


async def _session(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> Any:
    r = await client.get(f"/api/sessions/{sid}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _edit(
    client: httpx.AsyncClient, headers: dict[str, str], sid: str, seq: int, text: str, **extra: Any
) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}], "sessionId": sid, "editSeq": seq}
    return await client.post("/api/chat", json=body, headers={**headers, **extra})


async def _regenerate(
    client: httpx.AsyncClient, headers: dict[str, str], sid: str, seq: int, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"/api/sessions/{sid}/messages/{seq}/regenerate", headers={**headers, **extra}
    )


def _path(detail: Any) -> list[tuple[int, str, str]]:
    return [(m["seq"], m["role"], m["content"]) for m in detail["messages"]]


async def test_edit_regenerate_and_move_the_head(client, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    me = await register(client)
    first = await chat(client, me, "hello")
    assert first.status_code == 200, first.text
    sid = first.json()["sessionId"]
    assert "seq" not in first.json()  # the seed's answer, as it was
    assert (await chat(client, me, "how are you", session_id=sid)).status_code == 200

    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 4 and detail["messageCount"] == 4
    assert [m["parentSeq"] for m in detail["messages"]] == [None, 1, 2, 3]
    assert all(m["siblingSeqs"] == [m["seq"]] for m in detail["messages"])

    # Edit the second user message: a sibling of 3, answered on the new branch.
    edited = await _edit(client, me, sid, 3, "how old are you")
    assert edited.status_code == 200, edited.text
    assert edited.json() == {
        "reply": "reply to how old are you",
        "imageUrl": None,
        "sessionId": sid,
        "seq": 6,
    }
    assert [m.content for m in recorder.turns[-1].history] == ["hello", "reply to hello"]
    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 6 and detail["messageCount"] == 4
    assert _path(detail) == [
        (1, "user", "hello"),
        (2, "assistant", "reply to hello"),
        (5, "user", "how old are you"),
        (6, "assistant", "reply to how old are you"),
    ]
    assert detail["messages"][2]["siblingSeqs"] == [3, 5]
    assert detail["messages"][2]["parentSeq"] == 2

    # Regenerate the reply: a sibling of 6.
    again = await _regenerate(client, me, sid, 6)
    assert again.status_code == 200, again.text
    assert again.json()["seq"] == 7
    assert recorder.turns[-1].message == "how old are you"
    assert [m.content for m in recorder.turns[-1].history] == ["hello", "reply to hello"]
    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 7
    assert detail["messages"][-1]["siblingSeqs"] == [6, 7]

    # Back to the first version: the newest leaf under 3 is 4.
    moved = await client.put(f"/api/sessions/{sid}/head", json={"seq": 3}, headers=me)
    assert moved.status_code == 200, moved.text
    assert moved.json()["headSeq"] == 4
    assert [s for s, _, _ in _path(moved.json())] == [1, 2, 3, 4]
    # And under 5, the newest reply.
    moved = await client.put(f"/api/sessions/{sid}/head", json={"seq": 5}, headers=me)
    assert moved.json()["headSeq"] == 7

    # A new message continues the active branch.
    r = await chat(client, me, "thanks", session_id=sid)
    assert r.status_code == 200
    assert (await _session(client, me, sid))["headSeq"] == 9
    assert [m.seq for m in recorder.turns[-1].history] == [1, 2, 5, 7]


# ----------------------------------------------------------------- errors and other users


async def test_other_users_ids_are_404_and_wrong_kinds_422(client, app):
    app.state.assistant = RecordingAssistant()
    me, other = await register(client), await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    # Another user's conversation: the same answer as a missing one, on every route.
    r = await _edit(client, other, sid, 1, "mine now")
    assert r.status_code == 404 and r.json()["code"] == "session_not_found"
    r = await _regenerate(client, other, sid, 2)
    assert r.status_code == 404 and r.json()["code"] == "session_not_found"
    r = await client.put(f"/api/sessions/{sid}/head", json={"seq": 1}, headers=other)
    assert r.status_code == 404 and r.json()["code"] == "session_not_found"
    r = await client.get(f"/api/sessions/{sid}", headers=other)
    assert r.status_code == 404
    # No such message in my conversation.
    r = await _edit(client, me, sid, 9, "x")
    assert r.status_code == 404 and r.json()["code"] == "message_not_found"
    r = await _regenerate(client, me, sid, 9)
    assert r.status_code == 404 and r.json()["code"] == "message_not_found"
    r = await client.put(f"/api/sessions/{sid}/head", json={"seq": 9}, headers=me)
    assert r.status_code == 404 and r.json()["code"] == "message_not_found"
    # Wrong kinds: an assistant message is regenerated, not edited.
    r = await _edit(client, me, sid, 2, "x")
    assert r.status_code == 422 and r.json()["code"] == "not_a_user_message"
    # An edit needs its conversation.
    body = {"messages": [{"role": "user", "content": "x"}], "editSeq": 1}
    r = await client.post("/api/chat", json=body, headers=me)
    assert r.status_code == 404 and r.json()["code"] == "session_not_found"
    r = await client.put(f"/api/sessions/{sid}/head", json={"seq": 0}, headers=me)
    assert r.status_code == 422
    # Nothing of that was written.
    detail = await _session(client, me, sid)
    assert [m["seq"] for m in detail["messages"]] == [1, 2] and detail["headSeq"] == 2
    async with app.state.sessionmaker() as db:
        count = (
            await db.execute(
                sa.text("SELECT count(*) FROM chat_message WHERE session_id = :s"), {"s": sid}
            )
        ).scalar_one()
    assert count == 2


async def test_a_message_that_answers_no_user_message_is_not_regenerable(client, app):
    """A first assistant message (imported) or a system message has no user message to
    answer: `422 not_regenerable`, and nothing is written."""
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    at = "2026-11-25T15:50:22.922399Z"
    messages = [
        {"seq": 1, "parentSeq": None, "role": "assistant", "content": "Welcome"},
        {"seq": 2, "parentSeq": 1, "role": "system", "content": "Be brief"},
        {"seq": 3, "parentSeq": 2, "role": "user", "content": "hi"},
        {"seq": 4, "parentSeq": 3, "role": "assistant", "content": "hello"},
    ]
    doc = {
        "format": "chatkeep.conversation",
        "version": 2,
        "conversation": {
            "id": "greeted-1",
            "title": "Greeted",
            "createdAt": at,
            "lastActivityAt": at,
            "messageCount": 4,
            "headSeq": 4,
            "messages": [{**m, "createdAt": at} for m in messages],
        },
    }
    r = await client.post("/api/import", json=doc, headers=me)
    assert r.status_code == 200, r.text
    sid = r.json()["sessions"][0]
    # Imports arrive archived: restored, the conversation goes on.
    assert (await client.post(f"/api/sessions/{sid}/restore", headers=me)).status_code == 200
    for seq in (1, 2):
        r = await _regenerate(client, me, sid, seq)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "not_regenerable"
    # The reply to a user message still is.
    r = await _regenerate(client, me, sid, 4)
    assert r.status_code == 200, r.text
    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 5 and detail["messages"][-1]["siblingSeqs"] == [4, 5]
    assert [m["seq"] for m in detail["messages"]] == [1, 2, 3, 5]


async def test_an_expired_conversation_is_not_edited_into_a_new_one(client, app, clock, settings):
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    clock.advance(settings.session_ttl_seconds + 60)
    r = await _edit(client, me, sid, 1, "hi")
    assert r.status_code == 409 and r.json()["code"] == "session_not_active"
    r = await _regenerate(client, me, sid, 2)
    assert r.status_code == 409 and r.json()["code"] == "session_not_active"
    # Restored, it can be edited again.
    assert (await client.post(f"/api/sessions/{sid}/restore", headers=me)).status_code == 200


# ------------------------------------------------------------------ failed turns, retries


async def test_regenerate_on_a_user_message_answers_a_failed_turn(client, app):
    recorder = RecordingAssistant(fail=AssistantError("model down"))
    app.state.assistant = recorder
    me = await register(client)
    failed = await chat(client, me, "hello")
    assert failed.status_code == 502
    sid = failed.json()["sessionId"]
    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 1 and [m["seq"] for m in detail["messages"]] == [1]

    recorder.fail = None
    r = await _regenerate(client, me, sid, 1)
    assert r.status_code == 200, r.text
    assert r.json() == {"reply": "reply to hello", "imageUrl": None, "sessionId": sid, "seq": 2}
    assert recorder.turns[-1].history == []
    detail = await _session(client, me, sid)
    assert _path(detail) == [(1, "user", "hello"), (2, "assistant", "reply to hello")]
    assert detail["messages"][1]["parentSeq"] == 1


async def test_a_failed_regenerate_leaves_the_head_where_it_was(client, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    await chat(client, me, "more", session_id=sid)
    recorder.fail = AssistantError("model down")
    r = await _regenerate(client, me, sid, 2)
    assert r.status_code == 502
    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 4 and [m["seq"] for m in detail["messages"]] == [1, 2, 3, 4]


async def test_regenerate_honours_the_idempotency_key(client, app, sessionmaker):
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    keyed = {"Idempotency-Key": "regen-1"}
    first = await _regenerate(client, me, sid, 2, **keyed)
    again = await _regenerate(client, me, sid, 2, **keyed)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["seq"] == 3
    other = await _regenerate(client, me, sid, 1, **keyed)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    edit_keyed = {"Idempotency-Key": "edit-1"}
    first = await _edit(client, me, sid, 1, "hi", **edit_keyed)
    again = await _edit(client, me, sid, 1, "hi", **edit_keyed)
    assert first.json() == again.json() and first.json()["seq"] == 5
    async with sessionmaker() as db:
        count = (
            await db.execute(
                sa.text("SELECT count(*) FROM chat_message WHERE session_id = :s"), {"s": sid}
            )
        ).scalar_one()
    assert count == 5  # hello, reply, regenerated reply, edit, its reply


async def test_one_generating_turn_per_conversation(client, app):
    slow = SlowAssistant(words=("a ", "b "), delay=30)
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    app.state.assistant = slow
    task = asyncio.create_task(chat(client, me, "and then", session_id=sid))
    await asyncio.wait_for(slow.started.wait(), 5)
    busy = await _regenerate(client, me, sid, 2)
    assert busy.status_code == 409 and busy.json()["code"] == "turn_in_progress"
    busy = await _edit(client, me, sid, 1, "hi")
    assert busy.status_code == 409 and busy.json()["code"] == "turn_in_progress"
    # The page sees where the generating reply attaches.
    detail = await _session(client, me, sid)
    assert detail["activeTurn"]["userSeq"] == 3
    slow.release.set()
    assert (await task).status_code == 200


async def test_moving_the_head_while_a_reply_is_written_keeps_the_users_choice(client, app):
    slow = SlowAssistant(words=("a ", "b "), delay=30)
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    await chat(client, me, "more", session_id=sid)
    app.state.assistant = slow
    task = asyncio.create_task(_regenerate(client, me, sid, 4))
    await asyncio.wait_for(slow.started.wait(), 5)
    moved = await client.put(f"/api/sessions/{sid}/head", json={"seq": 1}, headers=me)
    assert moved.json()["headSeq"] == 4
    moved = await client.put(f"/api/sessions/{sid}/head", json={"seq": 2}, headers=me)
    slow.release.set()
    assert (await task).json()["seq"] == 5
    detail = await _session(client, me, sid)
    assert detail["headSeq"] == 5  # the head had not left; the new reply is the head


# ------------------------------------------------------------------ streams and devices


async def test_edit_and_regenerate_stream_like_any_message(live, app):
    app.state.assistant = RecordingAssistant()
    me = await register(live)
    sid = (await chat(live, me, "hello")).json()["sessionId"]
    body = {"messages": [{"role": "user", "content": "hi"}], "sessionId": sid, "editSeq": 1}
    async with live.stream("POST", "/api/chat", json=body, headers=sse_headers(me)) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = await collect(r)
    assert events[0].name == "turn" and events[-1].name == "done"
    assert events[-1].data["seq"] == 4 and events[-1].data["reply"] == "reply to hi"

    url = f"/api/sessions/{sid}/messages/4/regenerate"
    async with live.stream("POST", url, headers=sse_headers(me)) as r:
        events = await collect(r)
    assert events[0].name == "turn" and events[-1].name == "done"
    assert events[-1].data["seq"] == 5
    # Resumable through the turn's own route.
    tid = events[0].data["turnId"]
    async with live.stream("GET", f"/api/sessions/{sid}/turns/{tid}/events", headers=me) as r:
        replay = await collect(r)
    assert replay[-1].data == events[-1].data


async def test_a_streamed_regenerate_stops_through_the_turn_route_and_is_retried(live, app):
    app.state.assistant = RecordingAssistant()
    me = await register(live)
    sid = (await chat(live, me, "hello")).json()["sessionId"]
    app.state.assistant = SlowAssistant(words=tuple(f"w{i} " for i in range(200)), delay=0.05)
    url = f"/api/sessions/{sid}/messages/2/regenerate"
    async with live.stream("POST", url, headers=sse_headers(me)) as r:
        stream = parse_events(r)
        turn = await anext(stream)
        assert turn.name == "turn"
        assert (await anext(stream)).name == "delta"
        tid = turn.data["turnId"]
        stop = await live.post(f"/api/sessions/{sid}/turns/{tid}/cancel", headers=me)
        assert stop.status_code == 202 and stop.json()["stopRequested"] is True
        rest = [e async for e in stream]
    done = rest[-1]
    assert done.name == "done" and done.data["stopped"] is True and done.data["seq"] == 3
    written = done.data["reply"]
    assert written.startswith("w0 ") and len(written.split()) < 200
    detail = await _session(live, me, sid)
    assert detail["headSeq"] == 3
    assert detail["messages"][-1]["content"] == written and detail["messages"][-1]["stopped"]
    assert detail["messages"][-1]["siblingSeqs"] == [2, 3]

    # Retry on the user message: a third version, nothing retyped.
    app.state.assistant = RecordingAssistant()
    again = await _regenerate(live, me, sid, 1)
    assert again.status_code == 200, again.text
    assert again.json() == {"reply": "reply to hello", "imageUrl": None, "sessionId": sid, "seq": 4}
    detail = await _session(live, me, sid)
    assert _path(detail) == [(1, "user", "hello"), (4, "assistant", "reply to hello")]
    assert detail["messages"][-1]["siblingSeqs"] == [2, 3, 4]


async def test_a_streamed_regenerate_that_fails_sends_error_and_keeps_the_head(live, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    me = await register(live)
    sid = (await chat(live, me, "hello")).json()["sessionId"]
    recorder.fail = AssistantError("model down")
    url = f"/api/sessions/{sid}/messages/2/regenerate"
    async with live.stream("POST", url, headers=sse_headers(me)) as r:
        assert r.status_code == 200
        events = await collect(r)
    assert [e.name for e in events] == ["turn", "error"]
    assert events[-1].data["status"] == 502 and events[-1].data["code"]
    detail = await _session(live, me, sid)
    assert detail["headSeq"] == 2 and [m["seq"] for m in detail["messages"]] == [1, 2]
    assert detail["messages"][-1]["siblingSeqs"] == [2]
    # The stored failure replays the same way through the turn's route.
    tid = events[0].data["turnId"]
    async with live.stream("GET", f"/api/sessions/{sid}/turns/{tid}/events", headers=me) as r:
        assert [e.name for e in await collect(r)] == ["turn", "error"]


async def test_a_second_device_hears_of_edits_regenerates_and_head_moves(live, app):
    app.state.assistant = RecordingAssistant()
    me = await register(live)
    sid = (await chat(live, me, "hello")).json()["sessionId"]
    async with listening(live, me) as device:
        await _edit(live, me, sid, 1, "hi")
        await device.wait_for(
            lambda e: e.name == "message" and e.data.get("seq") == 3 and e.data["role"] == "user"
        )
        await device.wait_for(lambda e: e.name == "message" and e.data.get("seq") == 4)
        await _regenerate(live, me, sid, 4)
        await device.wait_for(lambda e: e.name == "message" and e.data.get("seq") == 5)
        r = await live.put(f"/api/sessions/{sid}/head", json={"seq": 1}, headers=me)
        assert r.json()["headSeq"] == 2
        moved = await device.wait_for(
            lambda e: e.name == "session" and e.data.get("change") == "head"
        )
        assert moved.data["sessionId"] == sid and moved.data["headSeq"] == 2


# --------------------------------------------------------------------- history and shares


async def test_history_and_share_links_follow_the_active_path(client, app):
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    await chat(client, me, "first version", session_id=sid)
    await _edit(client, me, sid, 3, "second version")
    await _regenerate(client, me, sid, 6)  # 7: a second reply to 5
    listed = (await client.get("/api/sessions", headers=me)).json()["items"][0]
    assert listed["messageCount"] == 4
    assert listed["preview"] == "reply to second version"
    assert (await _session(client, me, sid))["messageCount"] == 4

    shared = await client.post(f"/api/sessions/{sid}/share", headers=me)
    assert shared.status_code in (200, 201), shared.text
    token = shared.json()["url"].rstrip("/").rsplit("/", 1)[-1]
    # The link keeps the path as it was, whatever the head does next.
    await client.put(f"/api/sessions/{sid}/head", json={"seq": 3}, headers=me)
    page = await client.get(f"/api/shared/{token}")
    assert page.status_code == 200, page.text
    assert [m["content"] for m in page.json()["messages"]] == [
        "hello",
        "reply to hello",
        "second version",
        "reply to second version",
    ]
    listed = (await client.get("/api/sessions", headers=me)).json()["items"][0]
    assert listed["messageCount"] == 4 and listed["preview"] == "reply to first version"
    shares = (await client.get("/api/shares", headers=me)).json()["items"]
    assert shares[0]["messageCount"] == 4


async def test_a_search_hit_off_the_active_path_says_so(client, app):
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    await chat(client, me, "about walruses", session_id=sid)  # 3, 4
    await _edit(client, me, sid, 3, "about penguins")  # 5, 6: the head's branch
    chain = (await chat(client, me, "walruses again")).json()["sessionId"]  # no branches

    async def hit(q: str, sid: str) -> Any:
        r = await client.get("/api/sessions", params={"q": q}, headers=me)
        assert r.status_code == 200, r.text
        return next(i for i in r.json()["items"] if i["id"] == sid)

    off = await hit("walruses", sid)
    assert off["matchSeq"] == 3 and off["matchOnPath"] is False
    on = await hit("penguins", sid)
    assert on["matchSeq"] == 5 and on["matchOnPath"] is True
    assert (await hit("walruses", chain))["matchOnPath"] is True
    # Opening the hit's branch puts it on the path.
    moved = await client.put(f"/api/sessions/{sid}/head", json={"seq": 3}, headers=me)
    assert moved.status_code == 200 and 3 in [m["seq"] for m in moved.json()["messages"]]
    assert (await hit("walruses", sid))["matchOnPath"] is True
    assert (await hit("penguins", sid))["matchOnPath"] is False
    # A title-only match has neither.
    titled = await hit("hello", sid)
    assert titled["matchSeq"] == 1 and titled["matchOnPath"] is True
    r = await client.get("/api/sessions", headers=me)
    assert all(i["matchSeq"] is None and i["matchOnPath"] is None for i in r.json()["items"])


async def test_an_archived_or_trashed_conversation_is_not_edited(client, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    assert (await client.post(f"/api/sessions/{sid}/archive", headers=me)).status_code == 200
    for action in ("archived", "trashed"):
        for r in (
            await _edit(client, me, sid, 1, "hi"),
            await _regenerate(client, me, sid, 2),
            await _regenerate(client, me, sid, 1),
        ):
            assert r.status_code == 409, (action, r.text)
            assert r.json()["code"] == "session_not_active"
            assert r.json()["sessionId"] == sid
        if action == "archived":
            r = await client.request("DELETE", f"/api/sessions/{sid}", headers=me)
            assert r.status_code in (200, 204), r.text
    assert len(recorder.turns) == 1  # the model was never asked
    async with app.state.sessionmaker() as db:
        count = (
            await db.execute(
                sa.text("SELECT count(*) FROM chat_message WHERE session_id = :s"), {"s": sid}
            )
        ).scalar_one()
    assert count == 2


# ------------------------------------------------------------------------- the draft ledger


async def test_a_draft_on_a_branch_left_behind_is_not_posted(client, app):
    """The built-in assistant: "yes" posts the pending draft of the active branch only."""
    me = await register(client)
    first = await chat(client, me, "Create a Facebook post about Diwali")
    sid = first.json()["sessionId"]
    assert "Would you like to post this" in first.json()["reply"]
    await chat(client, me, "what a nice day", session_id=sid)  # 3, 4
    # Edit the first message: the draft (written at 1 → 2) is on the branch left behind.
    r = await _edit(client, me, sid, 1, "hello there")
    assert r.status_code == 200, r.text
    r = await chat(client, me, "yes", session_id=sid)
    assert r.status_code == 200
    assert (await client.get("/api/posts", headers=me)).json()["posts"] == []
    r = await chat(client, me, "regenerate the previous post", session_id=sid)
    assert "no previous post" in r.json()["reply"].lower()
    r = await chat(client, me, "cancel", session_id=sid)
    drafts = (await client.get(f"/api/sessions/{sid}/drafts", headers=me)).json()
    assert [d["status"] for d in drafts["drafts"]] == ["pending"]

    # Back on the draft's branch, "yes" posts it.
    await client.put(f"/api/sessions/{sid}/head", json={"seq": 1}, headers=me)
    r = await chat(client, me, "yes", session_id=sid)
    posts = (await client.get("/api/posts", headers=me)).json()["posts"]
    assert len(posts) == 1 and "diwali" in posts[0]["text"].lower()


# ------------------------------------------------------------------ context and exports


async def test_the_context_is_the_active_path_within_its_bounds(client, app, settings):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    settings.context_max_messages = 3
    me = await register(client)
    sid = (await chat(client, me, "a")).json()["sessionId"]
    for text in ("b", "c", "d"):
        await chat(client, me, text, session_id=sid)  # 3..8
    await _edit(client, me, sid, 7, "d2")  # 9, a sibling of 7 (parent 6)
    assert [m.seq for m in recorder.turns[-1].history] == [4, 5, 6]
    await client.put(f"/api/sessions/{sid}/head", json={"seq": 3}, headers=me)
    await chat(client, me, "e", session_id=sid)  # the newest leaf under 3 is 10
    assert [m.seq for m in recorder.turns[-1].history] == [6, 9, 10]
    await client.put(f"/api/sessions/{sid}/head", json={"seq": 7}, headers=me)
    await chat(client, me, "f", session_id=sid)
    assert [m.seq for m in recorder.turns[-1].history] == [6, 7, 8]


async def test_a_tree_round_trips_through_export_and_import(client, app, clock):
    app.state.assistant = RecordingAssistant()
    me, fresh = await register(client), await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    clock.advance(1)
    await chat(client, me, "first", session_id=sid)
    clock.advance(1)
    await _edit(client, me, sid, 3, "second")
    clock.advance(1)
    await _regenerate(client, me, sid, 2)
    await client.put(f"/api/sessions/{sid}/head", json={"seq": 3}, headers=me)
    exported = await client.get(f"/api/sessions/{sid}/export?format=json", headers=me)
    doc = exported.json()
    assert doc["version"] == 2 and doc["conversation"]["headSeq"] == 4

    r = await client.post(
        "/api/import", files={"file": ("export.json", exported.content)}, headers=fresh
    )
    assert r.status_code == 200, r.text
    new_id = r.json()["sessions"][0]
    again = (await client.get(f"/api/sessions/{new_id}/export?format=json", headers=fresh)).json()

    def tree(conv: Any) -> Any:
        return (
            conv["headSeq"],
            [
                (m["seq"], m["parentSeq"], m["role"], m["content"], m["createdAt"])
                for m in conv["messages"]
            ],
        )

    assert tree(again["conversation"]) == tree(doc["conversation"])
    detail = await _session(client, fresh, new_id)
    assert detail["headSeq"] == 4 and [m["seq"] for m in detail["messages"]] == [1, 2, 3, 4]
    assert detail["messages"][2]["siblingSeqs"] == [3, 5]
    # Importing the same file again adds nothing.
    r = await client.post(
        "/api/import", files={"file": ("export.json", exported.content)}, headers=fresh
    )
    assert r.json()["imported"] == 0 and r.json()["skipped"] == 1


async def test_the_zip_of_everything_carries_every_tree_and_round_trips(client, app, clock):
    """The ZIP's conversations.json holds every branch, each message's parent and the head;
    imported into a fresh account it comes back the same, and a second import adds
    nothing."""
    app.state.assistant = RecordingAssistant()
    me, fresh = await register(client), await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    clock.advance(1)
    await chat(client, me, "first", session_id=sid)  # 3, 4
    clock.advance(1)
    await _edit(client, me, sid, 3, "second")  # 5, 6
    clock.advance(1)
    await _regenerate(client, me, sid, 6)  # 7
    await client.put(f"/api/sessions/{sid}/head", json={"seq": 3}, headers=me)  # head 4
    clock.advance(60)
    chain = (await chat(client, me, "a line")).json()["sessionId"]

    def trees(doc: Any) -> dict[str, Any]:
        return {
            conv["title"]: (
                conv["headSeq"],
                [
                    (m["seq"], m["parentSeq"], m["role"], m["content"], m["createdAt"])
                    for m in conv["messages"]
                ],
            )
            for conv in doc["conversations"]
        }

    async def export(headers: dict[str, str]) -> tuple[bytes, Any]:
        r = await client.get("/api/export", params={"format": "zip"}, headers=headers)
        assert r.status_code == 200, r.text
        with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
            return r.content, json.loads(zf.read("conversations.json"))

    data, doc = await export(me)
    assert doc["version"] == 2
    exported = trees(doc)
    head, messages = exported["hello"]
    assert head == 4 and len(messages) == 7
    assert [(s, p) for s, p, *_ in messages] == [
        (1, None),
        (2, 1),
        (3, 2),
        (4, 3),
        (5, 2),
        (6, 5),
        (7, 5),
    ]
    assert exported["a line"][0] == 2
    assert {sid, chain} == {c["id"] for c in doc["conversations"]}

    r = await client.post("/api/import", files={"file": ("export.zip", data)}, headers=fresh)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 2
    assert trees((await export(fresh))[1]) == exported
    again = await client.post("/api/import", files={"file": ("export.zip", data)}, headers=fresh)
    assert again.json()["imported"] == 0 and again.json()["skipped"] == 2


async def test_a_version_1_export_imports_as_a_chain(client, app):
    me = await register(client)
    doc = {
        "format": "chatkeep.conversation",
        "version": 1,
        "exportedAt": "2026-11-25T16:00:00.000000Z",
        "conversation": {
            "id": "old-1",
            "title": "Old",
            "status": "archived",
            "createdAt": "2026-11-25T15:50:22.922399Z",
            "lastActivityAt": "2026-11-25T15:52:10.000000Z",
            "archivedAt": None,
            "messageCount": 3,
            "messages": [
                {
                    "seq": i,
                    "role": role,
                    "content": f"m{i}",
                    "imageUrl": None,
                    "createdAt": "2026-11-25T15:50:22.922399Z",
                    "metadata": {},
                }
                for i, role in ((1, "user"), (2, "assistant"), (3, "user"))
            ],
            "drafts": [],
        },
    }
    r = await client.post("/api/import", json=doc, headers=me)
    assert r.status_code == 200, r.text
    detail = await _session(client, me, r.json()["sessions"][0])
    assert detail["headSeq"] == 3
    assert [m["parentSeq"] for m in detail["messages"]] == [None, 1, 2]


async def test_an_import_refuses_a_parent_that_is_not_older(client, app):
    me = await register(client)
    message = {"role": "user", "content": "x", "createdAt": "2026-11-25T15:50:22.922399Z"}
    doc = {
        "format": "chatkeep.conversation",
        "version": 2,
        "conversation": {
            "id": "loop-1",
            "title": "Loop",
            "createdAt": "2026-11-25T15:50:22.922399Z",
            "lastActivityAt": "2026-11-25T15:52:10.000000Z",
            "messageCount": 2,
            "messages": [
                {**message, "seq": 1, "parentSeq": None},
                {**message, "seq": 2, "parentSeq": 2},
            ],
        },
    }
    r = await client.post("/api/import", json=doc, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "invalid_export"


async def test_the_pdf_prints_the_active_path_and_counts_the_other_versions(client, app):
    app.state.assistant = RecordingAssistant()
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    await chat(client, me, "zebra question", session_id=sid)
    await _edit(client, me, sid, 3, "giraffe question")
    r = await client.get(f"/api/sessions/{sid}/export?format=pdf", headers=me)
    assert r.status_code == 200, r.text
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    assert "giraffe question" in text and "zebra" not in text
    assert "Messages: 4" in text
    assert "2 other versions" in text
