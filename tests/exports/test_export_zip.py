"""Exporting everything as one ZIP: contents, manifest, filters, streaming."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile

import pytest
import sqlalchemy as sa

from app.core import db
from app.exports import downloads, zip_export
from app.history.service import SessionFilter
from app.typesetting import pdf
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _start(client, headers, clock, text, *more) -> str:
    clock.advance(60)
    sid = (await chat(client, headers, text)).json()["sessionId"]
    for line in more:
        assert (await chat(client, headers, line, session_id=sid)).status_code == 200
    return sid


def _open(content: bytes) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(io.BytesIO(content))
    assert zf.testzip() is None  # every CRC checks out
    return zf


async def test_zip_holds_json_pdfs_and_a_manifest_that_verifies(client, clock):
    headers = await register(client)
    other = await register(client)
    a = await _start(client, headers, clock, "Plan a trip to Lisbon", "add a day in Sintra")
    b = await _start(client, headers, clock, "Plan a trip to Lisbon")  # same title, same day
    c = await _start(client, headers, clock, "Привет, как дела?")
    assert (await client.post(f"/api/sessions/{c}/archive", headers=headers)).status_code == 200
    await _start(client, other, clock, "not to be exported")

    r = await client.get("/api/export?format=zip", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    day = clock.now().strftime("%Y-%m-%d")
    assert r.headers["content-disposition"] == f'attachment; filename="chatkeep-export-{day}.zip"'

    zf = _open(r.content)
    names = zf.namelist()
    assert names[0] == "conversations.json"
    assert names[-1] == "manifest.json"
    pdfs = [n for n in names if n.startswith("conversations/")]
    assert len(pdfs) == 3 and len(set(pdfs)) == 3
    assert all(n.endswith(".pdf") for n in pdfs)
    for name in pdfs:
        assert zf.read(name).startswith(b"%PDF")

    doc = json.loads(zf.read("conversations.json"))
    assert doc["format"] == "chatkeep.export" and doc["version"] == 2
    convs = doc["conversations"]
    assert [cv["id"] for cv in convs] == [c, b, a]  # newest activity first
    # Each PDF is named by its conversation's day of creation (the run may cross midnight).
    lisbon = {f"conversations/plan-a-trip-to-lisbon-{cv['createdAt'][:10]}-" for cv in convs[1:]}
    assert sum(any(n.startswith(prefix) for prefix in lisbon) for n in pdfs) == 2
    assert [len(cv["messages"]) for cv in convs] == [2, 2, 4]
    assert convs[0]["status"] == "archived"
    assert convs[2]["messages"][2]["content"] == "add a day in Sintra"
    assert all(cv["drafts"] == [] for cv in convs)
    assert "not to be exported" not in zf.read("conversations.json").decode()

    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "chatkeep.export.manifest"
    assert manifest["counts"] == {"conversations": 3, "messages": 8, "files": 4}
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == {"conversations.json", *pdfs}
    for path, entry in listed.items():
        data = zf.read(path)
        assert entry["size"] == len(data), path
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path


async def test_zip_filters_by_status_words_and_dates(client, clock):
    headers = await register(client)
    old = await _start(client, headers, clock, "Kohlrabi soup recipe")
    clock.advance(3 * 86400)
    mid = await _start(client, headers, clock, "Garden plans")
    assert (await client.post(f"/api/sessions/{mid}/archive", headers=headers)).status_code == 200
    clock.advance(3 * 86400)
    new = await _start(client, headers, clock, "More kohlrabi ideas")

    async def exported(**params) -> list[str]:
        r = await client.get("/api/export", params={"format": "zip", **params}, headers=headers)
        assert r.status_code == 200, r.text
        convs = json.loads(_open(r.content).read("conversations.json"))["conversations"]
        return [cv["id"] for cv in convs]

    assert await exported() == [new, mid, old]
    assert await exported(status="archived") == [mid]
    assert await exported(status="active") == [new, old]
    assert await exported(q="kohlrabi") == [new, old]
    mid_day = clock.now().date().fromordinal(clock.now().date().toordinal() - 3).isoformat()
    assert await exported(**{"from": mid_day, "to": mid_day}) == [mid]
    assert await exported(**{"from": mid_day}) == [new, mid]
    assert await exported(**{"to": mid_day}) == [mid, old]


async def test_an_empty_export_is_still_a_valid_archive(client):
    headers = await register(client)
    r = await client.get("/api/export?format=zip", headers=headers)
    zf = _open(r.content)
    assert json.loads(zf.read("conversations.json"))["conversations"] == []
    assert json.loads(zf.read("manifest.json"))["counts"] == {
        "conversations": 0,
        "messages": 0,
        "files": 1,
    }


async def test_bad_export_parameters_are_422_problems(client):
    headers = await register(client)
    for params in (
        {"from": "yesterday"},
        {"to": "2026-13-01"},
        {"from": "2026-05-02", "to": "2026-05-01"},
        {"format": "rar"},
        {"status": "deleted"},
    ):
        r = await client.get("/api/export", params=params, headers=headers)
        assert r.status_code == 422, params
        assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/export")).status_code == 401


async def test_the_zip_is_laid_out_with_no_connection_held(
    app, client, clock, settings, monkeypatch
):
    headers = await register(client)
    for i in range(3):
        await _start(client, headers, clock, f"conversation {i}", "more")
    me = uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])

    # The archive gets an engine of its own, so the app's own background work (a turn's
    # tail, the sweeper) cannot show up in the count.
    engine = db.create_engine(settings, app.state.engine.url.render_as_string(False))
    sessionmaker = db.create_sessionmaker(engine)
    pool = engine.pool
    held: list[int] = []
    real = pdf.render_conversation_pdf

    def render(*args, **kwargs):
        held.append(pool.checkedout())
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf, "render_conversation_pdf", render)
    download = await zip_export.archive(
        sessionmaker=sessionmaker,
        user_id=me,
        flt=SessionFilter(),
        now=clock.now(),
        data_dir=settings.data_dir,
    )
    try:
        content = b"".join(download.chunks())
    finally:
        download.close()
        await engine.dispose()
    assert held == [0, 0, 0]  # every PDF was laid out after the reading was done
    assert len(content) == download.size
    zf = _open(content)
    assert len(zf.namelist()) == 5
    # The workspace is gone with the download.
    assert list((settings.data_dir / "spool").iterdir()) == []


async def test_a_conversation_deleted_while_the_zip_is_made_is_left_out(
    client, clock, sessionmaker, settings, monkeypatch
):
    headers = await register(client)
    keep = await _start(client, headers, clock, "kept conversation")
    gone = await _start(client, headers, clock, "deleted meanwhile")
    me = uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])
    real = downloads.conversation_ids

    async def listed_then_deleted(**kwargs):
        ids = await real(**kwargs)
        async with sessionmaker() as db:
            await db.execute(
                sa.text("DELETE FROM chat_message WHERE session_id = :id"), {"id": gone}
            )
            await db.execute(sa.text("DELETE FROM chat_session WHERE id = :id"), {"id": gone})
            await db.commit()
        return ids

    monkeypatch.setattr(zip_export, "conversation_ids", listed_then_deleted)
    download = await zip_export.archive(
        sessionmaker=sessionmaker,
        user_id=me,
        flt=SessionFilter(),
        now=clock.now(),
        data_dir=settings.data_dir,
    )
    try:
        zf = _open(b"".join(download.chunks()))
    finally:
        download.close()
    document = json.loads(zf.read("conversations.json"))
    assert [c["id"] for c in document["conversations"]] == [keep]
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["counts"]["conversations"] == 1
    assert len([n for n in zf.namelist() if n.endswith(".pdf")]) == 1
