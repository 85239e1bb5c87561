"""Branched exports of other products come in whole: every version, the right head."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import register

pytestmark = pytest.mark.storage


def _chatgpt_node(key: str, parent: str | None, role: str | None, text: str, at: float) -> Any:
    message = None
    if role is not None:
        message = {
            "author": {"role": role},
            "create_time": at,
            "content": {"content_type": "text", "parts": [text]},
        }
    return {"id": key, "parent": parent, "children": [], "message": message}


def _chatgpt(current: str) -> bytes:
    nodes = [
        _chatgpt_node("root", None, None, "", 0),
        _chatgpt_node("sys", "root", "system", "", 1),  # empty: skipped, re-parented
        _chatgpt_node("q1", "sys", "user", "Name a bird", 10),
        _chatgpt_node("a1", "q1", "assistant", "A robin", 11),
        _chatgpt_node("a1b", "q1", "assistant", "A wren", 12),  # regenerated
        _chatgpt_node("q2", "a1b", "user", "Name a fish", 20),
        _chatgpt_node("q2b", "a1b", "user", "Name a fast fish", 21),  # edited
        _chatgpt_node("a2b", "q2b", "assistant", "A sailfish", 22),
        _chatgpt_node("hidden", "a2b", None, "", 23),  # no message: head falls back
    ]
    mapping = {n["id"]: n for n in nodes}
    for n in nodes:
        if n["parent"]:
            mapping[n["parent"]]["children"].append(n["id"])
    entry = {
        "title": "Birds and fish",
        "create_time": 5,
        "update_time": 30,
        "conversation_id": f"conv-{current}",
        "current_node": current,
        "mapping": mapping,
    }
    return json.dumps([entry]).encode()


def _said(detail: Any) -> list[str]:
    return [m["content"] for m in detail["messages"]]


async def _import_one(client: Any, headers: Any, data: bytes) -> Any:
    r = await client.post("/api/import", files={"file": ("x.json", data)}, headers=headers)
    assert r.status_code == 200, r.text
    [sid] = r.json()["sessions"]
    r = await client.get(f"/api/sessions/{sid}", headers=headers)
    return r.json()


async def test_a_branched_chatgpt_export_keeps_every_branch(client):
    me = await register(client)
    conv = await _import_one(client, me, _chatgpt("hidden"))
    # The head is the current node's nearest kept ancestor.
    assert _said(conv) == ["Name a bird", "A wren", "Name a fast fish", "A sailfish"]
    assert conv["messages"][0]["parentSeq"] is None  # the skipped system node is gone
    wren, fast = conv["messages"][1], conv["messages"][2]
    assert len(wren["siblingSeqs"]) == 2 and len(fast["siblingSeqs"]) == 2
    # Each other version opens its branch.
    robin = next(s for s in wren["siblingSeqs"] if s != wren["seq"])
    moved = await client.put(f"/api/sessions/{conv['id']}/head", json={"seq": robin}, headers=me)
    assert _said(moved.json()) == ["Name a bird", "A robin"]
    fish = next(s for s in fast["siblingSeqs"] if s != fast["seq"])
    moved = await client.put(f"/api/sessions/{conv['id']}/head", json={"seq": fish}, headers=me)
    assert _said(moved.json()) == ["Name a bird", "A wren", "Name a fish"]
    # Six messages in all, the exported tree says the same.
    doc = (await client.get(f"/api/sessions/{conv['id']}/export?format=json", headers=me)).json()
    assert doc["conversation"]["messageCount"] == 6
    # Importing it again adds nothing.
    data = _chatgpt("hidden")
    r = await client.post("/api/import", files={"file": ("x.json", data)}, headers=me)
    assert r.json()["imported"] == 0 and r.json()["skipped"] == 1
    # And a current node on an older branch makes that branch the head.
    older = await _import_one(client, me, _chatgpt("a1"))
    assert _said(older) == ["Name a bird", "A robin"]


def _openwebui() -> bytes:
    def node(key: str, parent: str | None, role: str, text: str, at: int) -> Any:
        return {"id": key, "parentId": parent, "role": role, "content": text, "timestamp": at}

    messages = [
        node("u1", None, "user", "Hello", 100),
        node("r1", "u1", "assistant", "Hi!", 101),
        node("r2", "u1", "assistant", "Hello there!", 102),
        node("u2", "r1", "user", "How are you?", 103),
        node("u2b", "r1", "user", "", 104),  # empty: skipped, its child moves up
        node("r3", "u2b", "assistant", "Fine", 105),
    ]
    chat = {
        "id": "owui-tree",
        "title": "Greetings",
        "created_at": 100,
        "updated_at": 105,
        "chat": {
            "title": "Greetings",
            "history": {"currentId": "u2", "messages": {m["id"]: m for m in messages}},
        },
    }
    return json.dumps([chat]).encode()


async def test_a_branched_open_webui_export_keeps_every_branch(client):
    me = await register(client)
    conv = await _import_one(client, me, _openwebui())
    assert _said(conv) == ["Hello", "Hi!", "How are you?"]
    assert len(conv["messages"][1]["siblingSeqs"]) == 2  # "Hello there!" too
    hi = conv["messages"][1]
    assert len(conv["messages"][2]["siblingSeqs"]) == 2  # "Fine", re-parented under "Hi!"
    fine = next(s for s in conv["messages"][2]["siblingSeqs"] if s != conv["messages"][2]["seq"])
    moved = await client.put(f"/api/sessions/{conv['id']}/head", json={"seq": fine}, headers=me)
    assert _said(moved.json()) == ["Hello", "Hi!", "Fine"]
    assert moved.json()["messages"][2]["parentSeq"] == hi["seq"]
    # Importing it again adds nothing.
    r = await client.post("/api/import", files={"file": ("x.json", _openwebui())}, headers=me)
    assert r.json()["imported"] == 0 and r.json()["skipped"] == 1
