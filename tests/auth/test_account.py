"""Deleting an account leaves no row of it; "Download my data" is the export plus account.json."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta

import sqlalchemy as sa

from app.conversations.retention import apply_retention
from app.models import metadata
from tests.conftest import TEST_PASSWORD, chat, register


async def _busy_user(client, email: str) -> dict[str, str]:
    headers = await register(client, email)
    r = await chat(client, headers, "Create a Facebook post about Diwali with image")
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    assert (await chat(client, headers, "post it", session_id=sid)).status_code == 200
    assert (await chat(client, headers, "a second conversation about tea")).status_code == 200
    return headers


async def _rows_of(sessionmaker, user_id: uuid.UUID) -> dict[str, int]:
    counts = {}
    async with sessionmaker() as s:
        for table in metadata.sorted_tables:
            if "user_id" in table.c:
                n = await s.scalar(
                    sa.select(sa.func.count()).select_from(table).where(table.c.user_id == user_id)
                )
                counts[table.name] = n
        counts["app_user"] = await s.scalar(
            sa.text("SELECT count(*) FROM app_user WHERE id = :id"), {"id": user_id}
        )
    return counts


async def test_deleting_the_account_removes_every_row_and_keeps_a_content_free_audit(
    client, sessionmaker
):
    email = "leaving@example.com"
    headers = await _busy_user(client, email)
    other = await _busy_user(client, "staying@example.com")
    me = uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])
    other_id = uuid.UUID((await client.get("/users/me", headers=other)).json()["id"])
    before = await _rows_of(sessionmaker, me)
    for table in ("chat_session", "chat_message", "post_draft", "published_post", "sign_in"):
        assert before[table] > 0, table
    other_before = await _rows_of(sessionmaker, other_id)

    r = await client.request("DELETE", "/users/me", json={}, headers=headers)
    assert r.status_code == 422
    r = await client.request(
        "DELETE", "/users/me", json={"currentPassword": "not the password at all"}, headers=headers
    )
    assert r.status_code == 400
    assert r.json()["code"] == "wrong_current_password"
    assert await _rows_of(sessionmaker, me) == before

    r = await client.request(
        "DELETE", "/users/me", json={"currentPassword": TEST_PASSWORD}, headers=headers
    )
    assert r.status_code == 204
    after = await _rows_of(sessionmaker, me)
    assert set(after.values()) == {0}, after
    assert await _rows_of(sessionmaker, other_id) == other_before
    assert (await client.get("/users/me", headers=headers)).status_code == 401

    async with sessionmaker() as s:
        events = (await s.execute(sa.text("SELECT * FROM account_event"))).mappings().all()
    assert len(events) == 1
    event = events[0]
    assert event["subject_id"] == me
    assert event["event"] == "account_deleted"
    assert event["detail"]["chat_message"] == before["chat_message"]
    stored = json.dumps({k: str(v) for k, v in event.items()})
    assert email not in stored and "Diwali" not in stored

    # The address is free again.
    r = await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    assert r.status_code == 201


async def test_download_my_data_is_the_export_plus_account_json(client):
    email = "keeper@example.com"
    headers = await _busy_user(client, email)
    r = await client.get("/api/me/data", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert "chatkeep-my-data-" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = archive.namelist()
    assert {"conversations.json", "account.json", "manifest.json"} <= set(names)
    assert sum(name.endswith(".pdf") for name in names) == 2
    conversations = json.loads(archive.read("conversations.json"))
    assert len(conversations["conversations"]) == 2
    account = json.loads(archive.read("account.json"))
    assert account["profile"]["email"] == email
    assert account["signIns"] and account["signIns"][0]["device"]
    assert "rateLimitOverrides" in account["settings"]
    manifest = json.loads(archive.read("manifest.json"))
    assert "account.json" in [f["path"] for f in manifest["files"]]


async def test_download_my_data_holds_retention_and_its_runs_but_no_temporary_chat(
    client, app, settings, clock
):
    me = await register(client)
    first = (await chat(client, me, "an old conversation about maps")).json()["sessionId"]
    assert (await client.put("/api/me/retention", json={"days": 30}, headers=me)).is_success
    clock.advance(timedelta(days=31).total_seconds())
    second = (await chat(client, me, "a newer one about rivers")).json()["sessionId"]
    assert await _retention_run(app, settings) == 1
    clock.advance(timedelta(days=31).total_seconds())
    kept = (await chat(client, me, "one to keep, about bread")).json()["sessionId"]
    assert await _retention_run(app, settings) == 1
    body = {"messages": [{"role": "user", "content": "a secret about cake"}], "temporary": True}
    r = await client.post("/api/chat", json=body, headers=me)
    assert r.status_code == 200, r.text
    temporary = r.json()["sessionId"]

    r = await client.get("/api/me/data", headers=me)
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    account = json.loads(archive.read("account.json"))
    kept_setting = account["settings"]["retention"]
    assert kept_setting["days"] == 30
    assert kept_setting["effectiveDays"] == 30
    assert kept_setting["maxDays"] is None
    # Every run with its counts, newest first, as GET /api/me/retention shows them.
    assert [(run["days"], run["trashed"]) for run in kept_setting["runs"]] == [(30, 1), (30, 1)]
    assert (
        kept_setting["runs"] == (await client.get("/api/me/retention", headers=me)).json()["runs"]
    )
    # The temporary conversation is in no file of it; the trashed ones are not either.
    conversations = json.loads(archive.read("conversations.json"))
    assert [c["id"] for c in conversations["conversations"]] == [kept]
    assert sum(name.endswith(".pdf") for name in archive.namelist()) == 1
    for name in archive.namelist():
        content = archive.read(name)
        assert temporary.encode() not in content, name
        if not name.endswith(".pdf"):  # a PDF's text is compressed
            assert b"a secret about cake" not in content, name
    assert first not in json.dumps(conversations) and second not in json.dumps(conversations)


async def _retention_run(app, settings) -> int:
    return await apply_retention(
        sessionmaker=app.state.sessionmaker,
        now=app.state.clock.now(),
        maximum=None,
        trash_days=settings.trash_retention_days,
        batch_size=10,
    )
