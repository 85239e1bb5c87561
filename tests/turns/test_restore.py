"""`POST /api/chat` with `restore`: writing in an archived conversation continues it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import chat, register

pytestmark = pytest.mark.storage


def _restoring(text: str, session_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}], "restore": True}
    if session_id is not None:
        body["sessionId"] = session_id
    return body


async def _archived(client, headers) -> str:
    sid = (await chat(client, headers, "first question")).json()["sessionId"]
    r = await client.post(f"/api/sessions/{sid}/archive", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "archived"
    return sid


async def test_restore_continues_an_archived_conversation(client):
    headers = await register(client)
    sid = await _archived(client, headers)

    r = await client.post("/api/chat", json=_restoring("and a follow-up", sid), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["sessionId"] == sid
    assert "expiredSessionId" not in r.json()

    session = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert session["status"] == "active"
    assert session["archivedAt"] is None
    assert [m["content"] for m in session["messages"] if m["role"] == "user"] == [
        "first question",
        "and a follow-up",
    ]
    assert [m["seq"] for m in session["messages"]] == [1, 2, 3, 4]
    active = (await client.get("/api/sessions?status=active", headers=headers)).json()
    assert [s["id"] for s in active["items"]] == [sid]
    archived = (await client.get("/api/sessions?status=archived", headers=headers)).json()
    assert archived["items"] == []


async def test_restore_continues_a_conversation_that_expired_unswept(client, clock):
    headers = await register(client)
    sid = (await chat(client, headers, "before lunch")).json()["sessionId"]
    clock.advance(3600)  # past the TTL; the sweeper has not archived it yet
    r = await client.post("/api/chat", json=_restoring("after lunch", sid), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["sessionId"] == sid
    assert "expiredSessionId" not in r.json()
    session = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert session["status"] == "active"
    assert session["messageCount"] == 4


async def test_restore_on_an_active_conversation_just_continues_it(client):
    headers = await register(client)
    sid = (await chat(client, headers, "hello")).json()["sessionId"]
    r = await client.post("/api/chat", json=_restoring("again", sid), headers=headers)
    assert r.status_code == 200
    assert r.json()["sessionId"] == sid
    assert (await client.get(f"/api/sessions/{sid}", headers=headers)).json()["messageCount"] == 4


async def test_without_restore_an_archived_conversation_still_starts_a_new_one(client):
    headers = await register(client)
    sid = await _archived(client, headers)
    r = await chat(client, headers, "no flag", session_id=sid)
    assert r.status_code == 200
    assert r.json()["expiredSessionId"] == sid
    assert r.json()["sessionId"] != sid
    old = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert old["status"] == "archived"
    assert old["messageCount"] == 2


async def test_restore_of_another_users_or_an_unknown_conversation_is_a_404(client):
    alice = await register(client)
    bob = await register(client)
    alice_sid = await _archived(client, alice)

    theirs = await client.post("/api/chat", json=_restoring("let me in", alice_sid), headers=bob)
    unknown = await client.post(
        "/api/chat", json=_restoring("hi", "session_1_" + "x" * 24), headers=bob
    )
    malformed = await client.post("/api/chat", json=_restoring("hi", "nonsense"), headers=bob)
    assert theirs.status_code == unknown.status_code == malformed.status_code == 404
    assert theirs.json()["code"] == "session_not_found"
    assert theirs.json() == unknown.json()
    # Nothing was written anywhere: Alice's conversation is as she left it, Bob has none.
    mine = (await client.get(f"/api/sessions/{alice_sid}", headers=alice)).json()
    assert mine["status"] == "archived"
    assert mine["messageCount"] == 2
    assert (await client.get("/api/sessions?status=active", headers=bob)).json()["items"] == []


async def test_restore_needs_a_session_id(client):
    headers = await register(client)
    r = await client.post("/api/chat", json=_restoring("hi", None), headers=headers)
    assert r.status_code == 422
    assert (await client.get("/api/sessions?status=active", headers=headers)).json()["items"] == []


async def test_restore_leaves_a_trashed_conversation_in_the_trash(client):
    headers = await register(client)
    sid = (await chat(client, headers, "hello")).json()["sessionId"]
    assert (await client.delete(f"/api/sessions/{sid}", headers=headers)).status_code == 204
    r = await client.post("/api/chat", json=_restoring("back?", sid), headers=headers)
    assert r.status_code == 409
    assert r.json()["code"] == "session_trashed"
    assert r.json()["sessionId"] == sid


async def test_a_retried_restore_joins_the_first_turn(client):
    headers = await register(client)
    sid = await _archived(client, headers)
    keyed = {**headers, "Idempotency-Key": "restore-retry-1"}
    first = await client.post("/api/chat", json=_restoring("once", sid), headers=keyed)
    again = await client.post("/api/chat", json=_restoring("once", sid), headers=keyed)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert (await client.get(f"/api/sessions/{sid}", headers=headers)).json()["messageCount"] == 4
