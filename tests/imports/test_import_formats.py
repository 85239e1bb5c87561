"""Importing other products' exports: ChatGPT, Claude and Open WebUI, recognised by content.

The files under fixtures/ are small hand-written exports in each product's public layout.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import register
from tests.imports.test_import import _import, _table_counts, _zip

pytestmark = pytest.mark.storage

FIXTURES = Path(__file__).parent / "fixtures"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def _imported(client, headers, body: dict) -> list[dict]:
    """The imported conversations with their messages, in the answer's order."""
    out = []
    for sid in body["sessions"]:
        r = await client.get(f"/api/sessions/{sid}", headers=headers)
        assert r.status_code == 200
        out.append(r.json())
    return out


def _said(detail: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in detail["messages"]]


async def test_chatgpt_export_imports_the_active_branch(client):
    user = await register(client)
    r = await _import(client, user, _fixture("chatgpt-conversations.json"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 1
    assert [(f["index"], f["sourceId"], f["title"]) for f in body["failed"]] == [
        (1, "6790a1b2-0000-4000-8000-00000000c002", "Broken: no mapping")
    ]
    assert "no mapping" in body["failed"][0]["detail"]
    [conv] = await _imported(client, user, body)
    assert conv["title"] == "Feeding a sourdough starter"
    assert conv["importedFrom"] == "chatgpt"
    assert conv["status"] == "archived"
    assert conv["createdAt"] == "2025-11-24T16:00:00.500000Z"
    assert conv["lastActivityAt"] == "2025-11-24T16:15:00.250000Z"
    # Hidden system and context nodes, thoughts and the recap are gone; code and its output
    # stay, in the answer they belong to. The active path is the current node's branch.
    assert _said(conv) == [
        ("user", "How often do I feed a sourdough starter?"),
        ("assistant", "Once a day at room temperature."),
        ("user", "How much flour for 3 feeds?"),
        ("assistant", "```python\nprint(3 * 50)\n```\n\n```\n150\n```\n\n150 g of flour in all."),
    ]
    assert [m["createdAt"] for m in conv["messages"]][:2] == [
        "2025-11-24T16:00:10Z",
        "2025-11-24T16:00:40Z",
    ]
    # Each answer keeps the model that wrote it (ChatGPT's `model_slug`).
    assert [m["model"] for m in conv["messages"]] == [None, "gpt-4o", None, "o3"]
    # The regenerated answer is kept, as the other version of the first answer.
    first_answer = conv["messages"][1]
    [other] = [s for s in first_answer["siblingSeqs"] if s != first_answer["seq"]]
    moved = await client.put(f"/api/sessions/{conv['id']}/head", json={"seq": other}, headers=user)
    assert _said(moved.json())[1] == ("assistant", "An answer the user regenerated.")
    assert moved.json()["messages"][1]["model"] == "gpt-4o-mini"
    listed = (await client.get("/api/sessions?status=archived", headers=user)).json()["items"]
    assert [(i["title"], i["importedFrom"]) for i in listed] == [
        ("Feeding a sourdough starter", "chatgpt")
    ]

    again = (await _import(client, user, _fixture("chatgpt-conversations.json"))).json()
    assert (again["imported"], again["skipped"], len(again["failed"])) == (0, 1, 1)


async def test_chatgpt_split_zip_with_user_json_and_chat_html(client, sessionmaker):
    user = await register(client)
    archive = _zip(
        {
            "user.json": b'{"id": "user-abc", "email": "someone@example.com"}',
            "chat.html": b"<html><body>chats</body></html>",
            "conversations-000.json": _fixture("chatgpt-conversations.json"),
            "conversations-001.json": _fixture("chatgpt-conversations-001.json"),
            "file-abc.png": b"\x89PNG not really",
        }
    )
    r = await _import(client, user, archive)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 2
    assert [f["index"] for f in body["failed"]] == [1]
    titles = {c["title"]: c for c in await _imported(client, user, body)}
    assert _said(titles["番茄炒蛋 🍅"]) == [
        ("user", "怎么做番茄炒蛋？"),  # noqa: RUF001  (Chinese punctuation, on purpose)
        ("assistant", "先炒蛋，再炒番茄。"),  # noqa: RUF001
    ]
    before = await _table_counts(sessionmaker)
    again = (await _import(client, user, archive, multipart=False)).json()
    assert (again["imported"], again["skipped"]) == (0, 2)
    assert await _table_counts(sessionmaker) == before


async def test_claude_export_follows_parents_and_skips_thinking(client):
    user = await register(client)
    data = _zip(
        {
            "conversations.json": _fixture("claude-conversations.json"),
            "users.json": b'[{"uuid": "acc-1"}]',
            "projects.json": b"[]",
        }
    )
    r = await _import(client, user, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 2
    assert [(f["index"], f["title"]) for f in body["failed"]] == [(2, "Empty chat")]
    kyoto, rust = await _imported(client, user, body)
    assert kyoto["title"] == "Two days in Kyoto"
    assert kyoto["importedFrom"] == "claude"
    assert kyoto["createdAt"] == "2025-11-20T08:00:00Z"
    assert kyoto["lastActivityAt"] == "2025-11-20T08:30:00Z"
    # The later edit ("Two days") is the branch shown; thinking and tool blocks are not text.
    assert _said(kyoto) == [
        ("user", "Plan a trip to Kyoto 京都"),
        ("assistant", "How many days do you have?"),
        ("user", "Two days"),
        ("assistant", "Day 1: Fushimi Inari.\n\nDay 2: Arashiyama."),
    ]
    # The earlier question is kept as the other version of the edit.
    assert len(kyoto["messages"][2]["siblingSeqs"]) == 2
    assert rust["messages"][1]["parentSeq"] == 1  # no parents: a chain
    # No parents and no content blocks: array order and `text`; no name: the first words.
    assert rust["title"] == "Is 🦀 Rust hard to learn?"
    assert _said(rust) == [
        ("user", "Is 🦀 Rust hard to learn?"),
        ("assistant", "Less than its reputation."),
    ]
    assert (await _import(client, user, data)).json()["skipped"] == 2


async def test_open_webui_export_keeps_the_current_branch_pins_and_tags(client):
    user = await register(client)
    r = await _import(client, user, _fixture("openwebui-export.json"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 1
    assert [(f["sourceId"], f["title"]) for f in body["failed"]] == [
        ("owui-chat-2", "Nothing here")
    ]
    [conv] = await _imported(client, user, body)
    assert conv["importedFrom"] == "openwebui"
    assert (conv["title"], conv["pinned"], conv["tags"]) == ("Bread hydration", True, ["baking"])
    assert conv["createdAt"] == "2025-11-13T02:13:20Z"
    assert conv["lastActivityAt"] == "2025-11-13T02:18:20Z"
    assert _said(conv) == [
        ("user", "What hydration for a sourdough loaf?"),
        ("assistant", "Around 75% for a beginner."),
    ]
    assert [m["createdAt"] for m in conv["messages"]] == [
        "2025-11-13T02:13:20Z",
        "2025-11-13T02:13:40Z",
    ]
    assert [m["model"] for m in conv["messages"]] == [None, "llama3.1:8b"]
    # The earlier answer is kept as another version; the head is `currentId`.
    assert conv["messages"][1]["siblingSeqs"] == [2, 3]
    assert conv["headSeq"] == conv["messages"][1]["seq"] == 3
    assert (await _import(client, user, _fixture("openwebui-export.json"))).json()["imported"] == 0


async def test_an_imported_conversation_keeps_its_source_through_a_chatkeep_export(client):
    alice = await register(client)
    bob = await register(client)
    body = (await _import(client, alice, _fixture("openwebui-export.json"))).json()
    sid = body["sessions"][0]
    exported = (await client.get(f"/api/sessions/{sid}/export?format=json", headers=alice)).content
    assert json.loads(exported)["conversation"]["importedFrom"] == "openwebui"
    # Back into the same account: it is already here.
    assert (await _import(client, alice, exported)).json()["imported"] == 0
    copy = (await _import(client, bob, exported)).json()["sessions"][0]
    detail = (await client.get(f"/api/sessions/{copy}", headers=bob)).json()
    assert detail["importedFrom"] == "openwebui"
    assert detail["messages"][1]["model"] == "llama3.1:8b"  # through the round trip


async def test_hostile_file_limits_hold_for_every_format(client, settings, sessionmaker):
    user = await register(client)
    before = await _table_counts(sessionmaker)
    chatgpt = _fixture("chatgpt-conversations.json")
    claude = _fixture("claude-conversations.json")
    openwebui = _fixture("openwebui-export.json")

    settings.max_import_conversations = 2
    for data in (
        claude,
        _zip({"conversations-000.json": chatgpt, "conversations-001.json": b"[{}]"}),
    ):
        r = await _import(client, user, data)
        assert (r.status_code, r.json()["code"]) == (422, "too_many_conversations")
    settings.max_import_conversations = 100

    settings.max_import_messages = 5  # every node of every tree counts
    for data in (chatgpt, claude):
        r = await _import(client, user, data)
        assert (r.status_code, r.json()["code"]) == (422, "too_many_messages"), r.text
    settings.max_import_messages = 1000

    bomb = _zip({"conversations-000.json": b"[" + b" " * 5_000_000 + b"]"})
    r = await _import(client, user, bomb)
    assert (r.status_code, r.json()["code"]) == (422, "archive_ratio")

    settings.max_import_uncompressed_bytes = len(chatgpt) + 10
    split = _zip(
        {
            "conversations-000.json": chatgpt,
            "conversations-001.json": _fixture("chatgpt-conversations-001.json"),
        },
        compression=zipfile.ZIP_STORED,
    )
    r = await _import(client, user, split)
    assert (r.status_code, r.json()["code"]) == (413, "archive_too_large")
    settings.max_import_uncompressed_bytes = 100 * 1024 * 1024

    unsafe = _zip({"conversations.json": openwebui, "../evil.json": b"[]"})
    assert (await _import(client, user, unsafe)).json()["code"] == "unsafe_archive"
    assert (await _import(client, user, b'[{"neither": "format"}]')).json()[
        "code"
    ] == "unsupported_format"

    # One message over MAX_MESSAGE_CHARS: that conversation is left out, with the reason.
    chars = settings.max_message_chars
    settings.max_message_chars = 30
    r = await _import(client, user, claude)
    assert r.status_code == 200, r.text
    failed = {f["title"]: f["code"] for f in r.json()["failed"]}
    assert failed["Two days in Kyoto"] == "message_too_long"
    assert r.json()["imported"] == 1
    settings.max_message_chars = chars
    # Every entry broken: the file is refused, and nothing changed but that one import.
    only_broken = json.dumps([json.loads(openwebui)[1]]).encode()
    r = await _import(client, user, only_broken)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_export")
    after = await _table_counts(sessionmaker)
    assert after[0] == before[0] + 1 and after[2] == before[2] + 1
