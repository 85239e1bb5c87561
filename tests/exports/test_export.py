"""Exporting one conversation: JSON and PDF downloads, as a client sees them."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
import sqlalchemy as sa

from app.core.db import commit
from app.core.errors import NotFoundError
from app.exports import downloads, naming, service
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

MISSING_ID = "session_1700000000000_AAAAAAAAAAAAAAAAAAAAAAAA"


async def _conversation(client, headers, clock, first="Plan a trip to Lisbon", turns=2) -> str:
    r = await chat(client, headers, first)
    sid = r.json()["sessionId"]
    for i in range(turns - 1):
        clock.advance(1)
        assert (await chat(client, headers, f"follow-up {i}", session_id=sid)).status_code == 200
    return sid


async def test_json_export_is_a_complete_versioned_download(client, clock):
    headers = await register(client)
    sid = await _conversation(client, headers, clock, turns=3)
    r = await client.get(f"/api/sessions/{sid}/export?format=json", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    day = clock.now().strftime("%Y-%m-%d")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="plan-a-trip-to-lisbon-{day}.json"'
    )
    doc = r.json()
    assert doc["format"] == "chatkeep.conversation"
    assert doc["version"] == 2
    assert doc["exportedAt"].endswith("Z")
    conv = doc["conversation"]
    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    for key in (
        "id",
        "title",
        "status",
        "createdAt",
        "lastActivityAt",
        "archivedAt",
        "messageCount",
    ):
        assert conv[key] == detail[key], key
    assert conv["drafts"] == []
    assert [m["seq"] for m in conv["messages"]] == [1, 2, 3, 4, 5, 6]
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"] * 3
    assert [m["content"] for m in conv["messages"]] == [m["content"] for m in detail["messages"]]
    assert [m["createdAt"] for m in conv["messages"]] == [
        m["createdAt"] for m in detail["messages"]
    ]
    assert conv["headSeq"] == detail["headSeq"] == 6
    assert [m["parentSeq"] for m in conv["messages"]] == [None, 1, 2, 3, 4, 5]
    assert set(conv["messages"][1]) == {
        "seq",
        "parentSeq",
        "role",
        "content",
        "imageUrl",
        "createdAt",
        "model",
        "metadata",
    }
    assert conv["messages"][1]["metadata"]["assistant"]


async def test_json_export_reads_long_conversations_in_batches(
    client, clock, sessionmaker, monkeypatch
):
    monkeypatch.setattr(service, "MESSAGE_BATCH", 3)
    headers = await register(client)
    sid = await _conversation(client, headers, clock, turns=5)  # 10 messages, 4 batches
    r = await client.get(f"/api/sessions/{sid}/export", headers=headers)
    conv = r.json()["conversation"]
    assert [m["seq"] for m in conv["messages"]] == list(range(1, 11))
    assert conv["messageCount"] == 10


async def test_non_ascii_titles_get_an_rfc5987_file_name(client, clock):
    headers = await register(client)
    sid = await _conversation(client, headers, clock, first="Привет, мир: план/идеи", turns=1)
    r = await client.get(f"/api/sessions/{sid}/export?format=json", headers=headers)
    disposition = r.headers["content-disposition"]
    day = clock.now().strftime("%Y-%m-%d")
    assert disposition.startswith(
        f"attachment; filename=\"conversation-{day}.json\"; filename*=UTF-8''"
    )
    encoded = disposition.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == f"Привет, мир план идеи-{day}.json"  # no slash survives
    assert disposition.isascii()


def test_slugs_and_names():
    assert naming.slugify("Crème brûlée: 10 tips!") == "creme-brulee-10-tips"
    assert naming.slugify("日本語") == "conversation"
    assert len(naming.slugify("word " * 50)) <= naming.SLUG_MAX_CHARS
    assert naming.content_disposition("a.json", "a.json") == 'attachment; filename="a.json"'


def test_a_long_unicode_name_is_cut_between_whole_emoji():
    flag = "\U0001f1eb\U0001f1f7"  # two regional indicators: one flag
    when = datetime(2026, 1, 2, tzinfo=UTC)
    _, name = naming.download_name("a" * 99 + flag, when, "md")
    assert name == "a" * 99 + "-2026-01-02.md"  # not half a flag (a lone indicator)


async def test_pdf_export_is_a_real_pdf_with_the_conversation(client, clock):
    headers = await register(client)
    sid = await _conversation(
        client, headers, clock, first="Quarterly plan for Kohlrabi Ltd", turns=2
    )
    r = await client.get(f"/api/sessions/{sid}/export?format=pdf", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    day = clock.now().strftime("%Y-%m-%d")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="quarterly-plan-for-kohlrabi-ltd-{day}.pdf"'
    )
    assert r.content.startswith(b"%PDF")
    assert int(r.headers["content-length"]) == len(r.content)
    pypdf = pytest.importorskip("pypdf")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    assert "Quarterly plan for Kohlrabi Ltd" in text
    assert "follow-up 0" in text
    assert sid in text


async def test_the_pdf_service_checks_the_owner(client, clock, sessionmaker, settings):
    headers = await register(client)
    sid = await _conversation(client, headers, clock, turns=1)
    me = uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])
    pdf = await downloads.conversation_pdf(
        sessionmaker=sessionmaker, user_id=me, session_id=sid, data_dir=settings.data_dir
    )
    try:
        assert b"".join(pdf.chunks()).startswith(b"%PDF")
    finally:
        pdf.close()
    with pytest.raises(NotFoundError):
        await downloads.conversation_pdf(
            sessionmaker=sessionmaker,
            user_id=uuid.uuid4(),
            session_id=sid,
            data_dir=settings.data_dir,
        )
    # Nothing is left behind in the spool.
    assert list((settings.data_dir / "spool").iterdir()) == []


async def test_export_of_another_users_conversation_is_404_like_a_missing_one(client, clock):
    owner = await register(client)
    intruder = await register(client)
    sid = await _conversation(client, owner, clock, turns=1)
    for fmt in ("json", "pdf"):
        theirs = await client.get(f"/api/sessions/{sid}/export?format={fmt}", headers=intruder)
        missing = await client.get(
            f"/api/sessions/{MISSING_ID}/export?format={fmt}", headers=intruder
        )
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == missing.json()
        assert "content-disposition" not in theirs.headers
    r = await client.get(f"/api/sessions/{sid}/export?format=docx", headers=owner)
    assert r.status_code == 422
    assert (await client.get(f"/api/sessions/{sid}/export")).status_code == 401


async def test_export_includes_the_drafts_of_the_conversation(client, clock):
    """The drafts the assistant wrote, each with its versions and its post, as the drafts
    API shows them; another conversation's drafts stay out."""
    headers = await register(client)
    r = await chat(client, headers, "Write a LinkedIn post about our new office")
    sid = r.json()["sessionId"]
    clock.advance(1)
    assert (await chat(client, headers, "try again", session_id=sid)).status_code == 200
    clock.advance(1)
    assert (await chat(client, headers, "post it", session_id=sid)).status_code == 200
    other = (await chat(client, headers, "Create a Facebook post about Diwali")).json()
    shown = await client.get(f"/api/sessions/{sid}/drafts", headers=headers)
    (draft,) = shown.json()["drafts"]
    assert draft["platform"] == "linkedin"
    assert [v["version"] for v in draft["versions"]] == [1, 2]
    assert draft["status"] == "published"

    conv = (await client.get(f"/api/sessions/{sid}/export", headers=headers)).json()["conversation"]
    assert conv["drafts"] == [draft]
    assert conv["drafts"][0]["publishedPost"]["text"] == draft["versions"][1]["text"]
    theirs = await client.get(f"/api/sessions/{other['sessionId']}/export", headers=headers)
    assert [d["platform"] for d in theirs.json()["conversation"]["drafts"]] == ["facebook"]


@pytest.mark.parametrize("fmt", ["json", "pdf"])
async def test_a_conversation_gone_before_its_download_is_made_is_a_clean_404(
    client, clock, sessionmaker, monkeypatch, fmt
):
    headers = await register(client)
    sid = await _conversation(client, headers, clock, turns=1)
    real = downloads.read_conversation

    async def deleted_first(**kwargs):
        # Deleted after the route found it, before the download is read.
        async with sessionmaker() as db:
            await db.execute(
                sa.text("DELETE FROM chat_message WHERE session_id = :id"), {"id": sid}
            )
            await db.execute(sa.text("DELETE FROM chat_session WHERE id = :id"), {"id": sid})
            await commit(db)
        return await real(**kwargs)

    monkeypatch.setattr(downloads, "read_conversation", deleted_first)
    r = await client.get(f"/api/sessions/{sid}/export", params={"format": fmt}, headers=headers)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "session_not_found"
    # The download slot was given back: the next export is not refused as one too many.
    monkeypatch.setattr(downloads, "read_conversation", real)
    other = await _conversation(client, headers, clock, turns=1)
    for _ in range(4):
        r = await client.get(f"/api/sessions/{other}/export", headers=headers)
        assert r.status_code == 200


def test_workspaces_a_killed_process_left_are_removed_once_stale(tmp_path):
    spool = downloads.spool_dir(tmp_path)
    old = spool / f"{downloads.WORKSPACE_PREFIX}old"
    fresh = spool / f"{downloads.WORKSPACE_PREFIX}fresh"
    other = spool / "not-a-workspace"
    for folder in (old, fresh, other):
        folder.mkdir()
        (folder / "messages.jsonl").write_bytes(b"{}\n")
    long_ago = time.time() - downloads.STALE_WORKSPACE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(other, (long_ago, long_ago))

    assert downloads.purge_stale_workspaces(tmp_path) == 1
    assert sorted(p.name for p in spool.iterdir()) == sorted([fresh.name, other.name])
