"""Importing exports back: round trips, no duplicates, and hostile files that change nothing."""

from __future__ import annotations

import copy
import io
import json
import zipfile

import pytest
import sqlalchemy as sa

from tests.assistants import RecordingAssistant
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

COMPARED = ("title", "createdAt", "lastActivityAt", "messageCount")


async def _start(client, headers, clock, text, *more) -> str:
    clock.advance(60)
    sid = (await chat(client, headers, text)).json()["sessionId"]
    for line in more:
        clock.advance(5)
        assert (await chat(client, headers, line, session_id=sid)).status_code == 200
    return sid


async def _export_json(client, headers, sid) -> bytes:
    r = await client.get(f"/api/sessions/{sid}/export?format=json", headers=headers)
    assert r.status_code == 200
    return r.content


async def _export_zip(client, headers) -> bytes:
    r = await client.get("/api/export?format=zip", headers=headers)
    assert r.status_code == 200
    return r.content


async def _import(client, headers, data: bytes, *, multipart: bool = True):
    if multipart:
        return await client.post(
            "/api/import", files={"file": ("export.bin", data)}, headers=headers
        )
    return await client.post("/api/import", content=data, headers=headers)


async def _export_doc(client, headers, sid) -> dict:
    return json.loads(await _export_json(client, headers, sid))["conversation"]


def _same_content(a: dict, b: dict) -> None:
    for key in COMPARED:
        assert a[key] == b[key], key
    strip = [
        {k: m[k] for k in ("seq", "role", "content", "imageUrl", "createdAt")}
        for m in a["messages"]
    ]
    assert strip == [
        {k: m[k] for k in ("seq", "role", "content", "imageUrl", "createdAt")}
        for m in b["messages"]
    ]
    assert [m["metadata"] for m in a["messages"]] == [m["metadata"] for m in b["messages"]]


async def _table_counts(sessionmaker) -> tuple[int, int, int]:
    async with sessionmaker() as db:
        row = (
            await db.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM chat_session),"
                    " (SELECT count(*) FROM chat_message),"
                    " (SELECT count(*) FROM chat_import)"
                )
            )
        ).one()
    return tuple(row)


async def test_json_round_trip_to_another_user_and_back_to_the_same_user(client, clock):
    alice = await register(client)
    bob = await register(client)
    sid = await _start(
        client, alice, clock, "Привет! Plan a trip 🚀", "add a day in Sintra", "shorter"
    )
    original = await _export_doc(client, alice, sid)
    data = await _export_json(client, alice, sid)

    r = await _import(client, bob, data)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 1 and body["skipped"] == 0
    new_id = body["sessions"][0]
    assert new_id != sid
    copy_for_bob = await _export_doc(client, bob, new_id)
    assert copy_for_bob["status"] == "archived"
    assert copy_for_bob["archivedAt"] is not None
    _same_content(copy_for_bob, original)
    # Alice cannot see Bob's copy, Bob's list shows it at its original place in time.
    assert (await client.get(f"/api/sessions/{new_id}", headers=alice)).status_code == 404
    items = (await client.get("/api/sessions?status=archived", headers=bob)).json()["items"]
    assert [i["id"] for i in items] == [new_id]

    detail = (await client.get(f"/api/sessions/{new_id}", headers=bob)).json()
    assert detail["importedFrom"] == "chatkeep"
    assert (await client.get(f"/api/sessions/{sid}", headers=alice)).json()["importedFrom"] is None

    # Importing the same file again adds nothing.
    r = await _import(client, bob, data)
    assert r.json() == {"imported": 0, "skipped": 1, "sessions": [], "failed": []}
    assert len((await client.get("/api/sessions", headers=bob)).json()["items"]) == 1


async def test_importing_your_own_export_into_the_same_account_adds_nothing(client, clock):
    alice = await register(client)
    sid = await _start(client, alice, clock, "Sourdough starter schedule", "and for rye?")
    other = await _start(client, alice, clock, "Tomato sauce")
    single = await _export_json(client, alice, sid)
    everything = await _export_zip(client, alice)

    # Never imported before: the ids in the file are this account's own sessions.
    assert (await _import(client, alice, single)).json()["skipped"] == 1
    r = await _import(client, alice, everything)
    assert (r.json()["imported"], r.json()["skipped"]) == (0, 2)
    # Continued since the export: the file is still a part of what is here.
    assert (await chat(client, alice, "and spelt?", session_id=sid)).status_code == 200
    assert (await _import(client, alice, single)).json()["imported"] == 0
    items = (await client.get("/api/sessions", headers=alice)).json()["items"]
    assert sorted(i["id"] for i in items) == sorted([sid, other])

    # Content that differs from the session of that id is not what is here: it is imported.
    doc = json.loads(single)
    doc["conversation"]["messages"][0]["content"] = "Sourdough starter, edited"
    r = await _import(client, alice, json.dumps(doc).encode())
    assert r.json()["imported"] == 1

    # Gone for good: the export brings it back, once.
    r = await client.delete(f"/api/sessions/{sid}?permanent=true", headers=alice)
    assert r.status_code == 204
    r = await _import(client, alice, single)
    assert r.json()["imported"] == 1
    back = r.json()["sessions"][0]
    detail = (await client.get(f"/api/sessions/{back}", headers=alice)).json()
    assert detail["title"] == "Sourdough starter schedule"
    assert detail["importedFrom"] == "chatkeep"
    assert (await _import(client, alice, single)).json()["imported"] == 0


async def test_imported_conversations_can_be_restored_and_continued(client, clock, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    alice = await register(client)
    bob = await register(client)
    sid = await _start(client, alice, clock, "Draft a toast for my sister", "make it warmer")
    new_id = (await _import(client, bob, await _export_json(client, alice, sid))).json()[
        "sessions"
    ][0]
    assert (await client.post(f"/api/sessions/{new_id}/restore", headers=bob)).status_code == 200
    r = await chat(client, bob, "and funnier", session_id=new_id)
    assert r.json()["sessionId"] == new_id
    assert [m.content for m in recorder.turns[-1].history][:3] == [
        "Draft a toast for my sister",
        "reply to Draft a toast for my sister",
        "make it warmer",
    ]
    detail = (await client.get(f"/api/sessions/{new_id}", headers=bob)).json()
    assert [m["seq"] for m in detail["messages"]] == [1, 2, 3, 4, 5, 6]


async def test_zip_round_trip_and_no_duplicates(client, clock):
    alice = await register(client)
    bob = await register(client)
    ids = [
        await _start(client, alice, clock, "first conversation", "more"),
        await _start(client, alice, clock, "second conversation"),
        await _start(client, alice, clock, "third — ünïcödé"),
    ]
    assert (await client.post(f"/api/sessions/{ids[1]}/archive", headers=alice)).status_code == 200
    originals = {sid: await _export_doc(client, alice, sid) for sid in ids}
    archive = await _export_zip(client, alice)

    r = await _import(client, bob, archive)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 3 and r.json()["skipped"] == 0
    copies = [await _export_doc(client, bob, new) for new in r.json()["sessions"]]
    by_title = {c["title"]: c for c in copies}
    for original in originals.values():
        _same_content(by_title[original["title"]], original)
    assert all(c["status"] == "archived" for c in copies)

    r = await _import(client, bob, archive, multipart=False)
    assert r.json() == {"imported": 0, "skipped": 3, "sessions": [], "failed": []}
    # The all-at-once JSON from inside the ZIP is accepted too, and is the same conversations.
    inner = zipfile.ZipFile(io.BytesIO(archive)).read("conversations.json")
    assert (await _import(client, bob, inner)).json()["skipped"] == 3


# ------------------------------------------------------------------------------ hostile


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return out.getvalue()


@pytest.fixture
async def exported(client, clock):
    """An owner with one conversation, its JSON export parsed, and an importer."""
    owner = await register(client)
    importer = await register(client)
    sid = await _start(client, owner, clock, "hello there", "second line")
    doc = json.loads(await _export_json(client, owner, sid))
    return owner, importer, doc


def _archive_doc(doc: dict, conversations: list[dict]) -> dict:
    return {
        "format": "chatkeep.export",
        "version": 1,
        "exportedAt": doc["exportedAt"],
        "conversations": conversations,
    }


def _variants(doc: dict, settings) -> dict[str, tuple[bytes, int, str]]:
    def edited(fn) -> bytes:
        d = copy.deepcopy(doc)
        fn(d["conversation"])
        return json.dumps(d).encode()

    def setitem(key, value):
        return lambda c: c.__setitem__(key, value)

    def msg(key, value):
        return lambda c: c["messages"][1].__setitem__(key, value)

    big = "x" * (settings.max_message_chars + 1)
    valid = json.dumps(doc).encode()
    return {
        "wrong format": (
            json.dumps({**doc, "format": "other.app"}).encode(),
            422,
            "unsupported_format",
        ),
        "future version": (json.dumps({**doc, "version": 3}).encode(), 422, "unsupported_version"),
        "version as text": (
            json.dumps({**doc, "version": "1"}).encode(),
            422,
            "unsupported_version",
        ),
        "not json": (b"{this is not json", 422, "invalid_json"),
        "not utf-8": (b"\xff\xfe\x00garbage", 422, "invalid_json"),
        "json array": (b"[1, 2, 3]", 422, "unsupported_format"),
        "deep nesting": (b"[" * 100_000 + b"]" * 100_000, 422, "invalid_json"),
        "empty": (b"", 422, "empty_upload"),
        "bad role": (edited(msg("role", "root")), 422, "invalid_export"),
        "naive timestamp": (edited(msg("createdAt", "2026-01-01T10:00:00")), 422, "invalid_export"),
        "garbage timestamp": (edited(msg("createdAt", "yesterday")), 422, "invalid_export"),
        "huge message": (edited(msg("content", big)), 422, "message_too_long"),
        "huge title": (edited(setitem("title", "t" * 201)), 422, "invalid_export"),
        "seq gap": (edited(msg("seq", 7)), 422, "invalid_export"),
        "count mismatch": (edited(setitem("messageCount", 99)), 422, "invalid_export"),
        "content not text": (edited(msg("content", {"$gt": ""})), 422, "invalid_export"),
        "missing messages": (edited(lambda c: c.pop("messages")), 422, "invalid_export"),
        "path traversal in zip": (
            _zip({"conversations.json": valid, "../../etc/cron.d/evil": b"x"}),
            422,
            "unsafe_archive",
        ),
        "absolute path in zip": (
            _zip({"conversations.json": valid, "/etc/passwd": b"x"}),
            422,
            "unsafe_archive",
        ),
        "windows path in zip": (
            _zip({"conversations.json": valid, "C:\\evil.pdf": b"x"}),
            422,
            "unsafe_archive",
        ),
        "zip bomb": (_zip({"conversations.json": b"\x00" * 5_000_000}), 422, "archive_ratio"),
        "zip without export": (_zip({"notes.txt": b"hello"}), 422, "unsupported_format"),
        "truncated zip": (_zip({"conversations.json": valid})[:-30], 422, "bad_archive"),
        "edited zip": (
            _zip(
                {
                    "conversations.json": valid.replace(b"hello there", b"hello THERE"),
                    "manifest.json": json.dumps(
                        {
                            "files": [
                                {
                                    "path": "conversations.json",
                                    "size": len(valid),
                                    "sha256": __import__("hashlib").sha256(valid).hexdigest(),
                                }
                            ]
                        }
                    ).encode(),
                }
            ),
            422,
            "bad_archive",
        ),
    }


async def test_each_hostile_import_is_refused_and_changes_nothing(
    client, exported, settings, sessionmaker
):
    _, importer, doc = exported
    before = await _table_counts(sessionmaker)
    for name, (data, status, code) in _variants(doc, settings).items():
        r = await _import(client, importer, data)
        assert r.status_code == status, (name, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), name
        assert r.json()["code"] == code, (name, r.json())
        assert await _table_counts(sessionmaker) == before, name
    assert (await client.get("/api/sessions", headers=importer)).json()["items"] == []


async def test_a_broken_conversation_is_left_out_and_listed(client, exported, sessionmaker):
    _, importer, doc = exported
    good = doc["conversation"]
    bad_role = copy.deepcopy(good)
    bad_role["id"] = "other-id"
    bad_role["title"] = "Bad role"
    bad_role["messages"][1]["role"] = "admin"
    no_messages = {k: v for k, v in good.items() if k != "messages"}
    before = await _table_counts(sessionmaker)
    r = await _import(
        client, importer, json.dumps(_archive_doc(doc, [bad_role, good, no_messages])).encode()
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 1
    assert [(f["index"], f["sourceId"], f["title"], f["code"]) for f in body["failed"]] == [
        (0, "other-id", "Bad role", "invalid_export"),
        (2, good["id"], good["title"], "invalid_export"),
    ]
    assert "role" in body["failed"][0]["detail"]
    assert await _table_counts(sessionmaker) == (
        before[0] + 1,
        before[1] + len(good["messages"]),
        before[2] + 1,
    )


async def test_limits_on_size_conversations_and_messages(client, exported, settings, sessionmaker):
    _, importer, doc = exported
    conv = doc["conversation"]
    before = await _table_counts(sessionmaker)
    three = json.dumps(_archive_doc(doc, [conv, conv, conv])).encode()

    settings.max_import_conversations = 2
    r = await _import(client, importer, three)
    assert (r.status_code, r.json()["code"]) == (422, "too_many_conversations")
    settings.max_import_conversations = 100

    settings.max_import_messages = 5  # three conversations of two messages each
    r = await _import(client, importer, three)
    assert (r.status_code, r.json()["code"]) == (422, "too_many_messages")
    settings.max_import_messages = 1000

    settings.max_import_bytes = len(three) - 1
    r = await _import(client, importer, three, multipart=False)  # Content-Length says it
    assert r.status_code == 413

    async def body():  # no Content-Length: the limit holds while reading
        for i in range(0, len(three), 100):
            yield three[i : i + 100]

    r = await client.post("/api/import", content=body(), headers=importer)
    assert r.status_code == 413
    assert r.json()["code"] == "import_too_large"
    settings.max_import_bytes = 50 * 1024 * 1024

    settings.max_import_uncompressed_bytes = 1000
    r = await _import(client, importer, _zip({"conversations.json": three}))
    assert (r.status_code, r.json()["code"]) == (413, "archive_too_large")
    assert await _table_counts(sessionmaker) == before


async def test_a_file_with_one_conversation_twice_imports_it_once(client, exported):
    _, importer, doc = exported
    conv = doc["conversation"]
    r = await _import(client, importer, json.dumps(_archive_doc(doc, [conv, conv])).encode())
    assert r.json()["imported"] == 1 and r.json()["skipped"] == 1
    # A changed conversation with the same source id is new content: it is imported.
    changed = copy.deepcopy(conv)
    changed["title"] = "renamed later"
    r = await _import(client, importer, json.dumps(_archive_doc(doc, [conv, changed])).encode())
    assert r.json()["imported"] == 1 and r.json()["skipped"] == 1


async def test_import_needs_a_signed_in_user_and_a_file_field(client, exported):
    _, importer, doc = exported
    assert (await client.post("/api/import", content=json.dumps(doc))).status_code == 401
    r = await client.post("/api/import", data={"note": "no file"}, files={}, headers=importer)
    assert r.status_code == 422
