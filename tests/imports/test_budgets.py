"""Imports under their budgets: long conversations go in by byte-bounded batches, the file
is streamed (keys in any order, escapes split between reads), a conversation over its
budget is listed and left out, and large imports take turns."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.core.metrics import REGISTRY
from app.imports.admission import ImportAdmission
from app.imports.reading import READ_CHUNK
from tests.conftest import register

pytestmark = pytest.mark.storage

AT = "2026-01-01T00:00:00Z"


def _conversation(source_id: str, contents: list[str], title: str = "Imported") -> dict:
    return {
        "id": source_id,
        "title": title,
        "createdAt": AT,
        "lastActivityAt": AT,
        "messageCount": len(contents),
        "messages": [
            {"seq": i + 1, "role": ("user", "assistant")[i % 2], "content": c, "createdAt": AT}
            for i, c in enumerate(contents)
        ],
    }


def _single(conv: dict) -> bytes:
    return json.dumps({"format": "chatkeep.conversation", "version": 1, "conversation": conv})


def _archive(*convs: dict) -> bytes:
    doc = {"format": "chatkeep.export", "version": 1, "conversations": list(convs)}
    return json.dumps(doc).encode()


async def _stored(sessionmaker) -> tuple[int, int]:
    async with sessionmaker() as s:
        row = (
            await s.execute(
                sa.text("SELECT count(*), coalesce(sum(length(content)), 0) FROM chat_message")
            )
        ).one()
    return int(row[0]), int(row[1])


async def test_eight_hundred_messages_of_the_longest_length_import(
    client, app, settings, sessionmaker
):
    user = await register(client)
    long = settings.max_message_chars
    contents = [f"{i:05d}" + "x" * (long - 5) for i in range(800)]
    body = _single(_conversation("long-one", contents)).encode()
    assert len(body) > 25_600_000  # the review's 25.7 MB

    inserted: list[int] = []

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        if statement.startswith("INSERT INTO chat_message "):
            rows = params if many else [params]
            inserted.append(sum(len(v) for row in rows for v in _texts(row)))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        r = await client.post("/api/import", content=body, headers=user)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 1
    assert await _stored(sessionmaker) == (800, 800 * long)
    # Every INSERT stayed within the batch's bytes (one message over at most).
    assert len(inserted) > 1
    assert max(inserted) <= settings.import_batch_bytes + long
    [sid] = r.json()["sessions"]
    detail = (await client.get(f"/api/sessions/{sid}", headers=user)).json()
    assert detail["messageCount"] == 800


def _texts(row: Any) -> list[str]:
    values = row.values() if isinstance(row, dict) else row
    return [v for v in values if isinstance(v, str)]


async def test_keys_in_any_order_and_a_late_wrong_format(client, sessionmaker):
    user = await register(client)
    conv = _conversation("late-header", ["hello", "hi"])
    late = json.dumps({"conversations": [conv], "version": 1, "format": "chatkeep.export"})
    r = await client.post("/api/import", content=late.encode(), headers=user)
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    before = await _stored(sessionmaker)

    other = _conversation("late-wrong", ["hello", "hi"])
    wrong = json.dumps({"conversations": [other], "version": 1, "format": "other.app"})
    r = await client.post("/api/import", content=wrong.encode(), headers=user)
    assert (r.status_code, r.json()["code"]) == (422, "unsupported_format")
    assert await _stored(sessionmaker) == before  # what was streamed before is rolled back

    bom = "\ufeff" + _single(_conversation("with-bom", ["hello"]))
    r = await client.post("/api/import", content=bom.encode(), headers=user)
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text


def _with_escape_at_boundary(escape: str) -> bytes:
    """A conversation whose text holds `escape` (JSON, ASCII) starting 6 bytes before the
    end of the parser's first read, so a surrogate pair is split between two reads."""
    filler = "a" * 30_000  # two messages of it; the third holds the escape
    doc = _single(_conversation("escapes", [filler, filler, "PLACEHOLDER"]))
    head, tail = doc.split("PLACEHOLDER")
    pad = READ_CHUNK - 6 - len(head)
    return (head + "a" * pad + escape + tail).encode()


async def test_surrogate_escapes_split_between_reads(client):
    user = await register(client)
    pair = _with_escape_at_boundary("\\ud83d\\ude00")
    r = await client.post("/api/import", content=pair, headers=user)
    assert r.status_code == 200, r.text
    [sid] = r.json()["sessions"]
    detail = (await client.get(f"/api/sessions/{sid}", headers=user)).json()
    assert detail["messages"][2]["content"].endswith("\U0001f600")

    # An escaped backslash before `ud800` is text, not an escape.
    literal = _with_escape_at_boundary("\\\\ud800 ok")
    r = await client.post("/api/import", content=literal, headers=user)
    assert r.status_code == 200, r.text

    for lone in ("\\ud83d and", "\\ude00 and", "\\ud83d\\ud83d"):
        r = await client.post("/api/import", content=_with_escape_at_boundary(lone), headers=user)
        assert (r.status_code, r.json()["code"]) == (422, "invalid_text"), (lone, r.text)
        assert "cannot be stored" in r.json()["detail"]


async def test_a_conversation_over_its_budget_is_listed_and_left_out(
    client, settings, sessionmaker
):
    user = await register(client)
    settings.max_import_conversation_bytes = 20_000
    big = _conversation("too-big", ["y" * 5_000] * 5, title="Too big")
    small = _conversation("small", ["hello"])
    r = await client.post("/api/import", content=_archive(big, small), headers=user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 1
    assert [(f["index"], f["sourceId"], f["title"], f["code"]) for f in body["failed"]] == [
        (0, "too-big", "Too big", "conversation_too_large")
    ]
    assert "MAX_IMPORT_CONVERSATION_BYTES" in body["failed"][0]["detail"]
    assert await _stored(sessionmaker) == (1, 5)

    # Alone in its file, it refuses the file.
    r = await client.post("/api/import", content=_archive(big), headers=user)
    assert (r.status_code, r.json()["code"]) == (422, "conversation_too_large")

    # The other keys of a file's top-level object share one budget: each under it, all
    # together over it.
    padded = json.loads(_single(small))
    padded.update({f"extra{i}": ["z" * 4_000] for i in range(6)})
    r = await client.post("/api/import", content=json.dumps(padded).encode(), headers=user)
    assert (r.status_code, r.json()["code"]) == (422, "conversation_too_large"), r.text
    assert await _stored(sessionmaker) == (1, 5)


def _zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("conversations.json", data)
    return out.getvalue()


async def test_one_large_import_at_a_time(client, app, settings, sessionmaker):
    user = await register(client)
    admission = app.state.import_admission = ImportAdmission()
    large = _zip(_archive(_conversation("zipped", ["hello"])))
    small = _single(_conversation("small", ["hello"])).encode()

    async with admission.slot(queue_length=1, wait_seconds=60):
        # A small import does not wait for the large one.
        r = await client.post("/api/import", content=small, headers=user)
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text

        # No room in the line: refused at once, nothing stored.
        settings.import_queue_length = 0
        busy_before = REGISTRY.get_sample_value("chatkeep_import_busy_total") or 0
        r = await client.post("/api/import", content=large, headers=user)
        assert (r.status_code, r.json()["code"]) == (503, "import_busy"), r.text
        assert int(r.headers["Retry-After"]) > 0
        assert await _stored(sessionmaker) == (1, 5)
        assert REGISTRY.get_sample_value("chatkeep_import_busy_total") == busy_before + 1

        # With room, it waits in line and runs once the slot is free.
        settings.import_queue_length = 1
        waiting = asyncio.create_task(client.post("/api/import", content=large, headers=user))
        while admission.waiting == 0:
            await asyncio.sleep(0.01)
        assert not waiting.done()
        assert REGISTRY.get_sample_value("chatkeep_imports_waiting") == 1
    r = await waiting
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    assert await _stored(sessionmaker) == (2, 10)
