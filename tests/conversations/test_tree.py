"""Conversations as trees: edit, regenerate, move the head, and what the model is given."""

from __future__ import annotations

from typing import Any

import httpx

from tests.assistants import RecordingAssistant
from tests.conftest import chat, register


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
