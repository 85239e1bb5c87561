"""Temporary conversations: kept out of lists, search, exports of everything, shares,
import dedupe and other devices' events; deleted for good once idle past the TTL."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.conversations.tasks import sweep_expired_sessions
from tests.conftest import chat, register
from tests.sse import listening
from tests.usage.conftest import make_superuser

pytestmark = pytest.mark.storage

ASK_FOR_IMAGE = "Create a Facebook post about Diwali with image"


async def _temporary(client, headers, text: str) -> str:
    body = {"messages": [{"role": "user", "content": text}], "temporary": True}
    r = await client.post("/api/chat", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["sessionId"]


async def _ids(client, headers, **params) -> list[str]:
    r = await client.get("/api/sessions", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def _rows(sessionmaker, table: str, sid: str) -> int:
    async with sessionmaker() as db:
        sql = sa.text(f"SELECT count(*) FROM {table} WHERE session_id = :sid")
        return int((await db.execute(sql, {"sid": sid})).scalar_one())


async def test_a_temporary_chat_is_in_no_list_search_or_export_of_everything(client, clock):
    me = await register(client)
    kept = (await chat(client, me, "Plan a trip to Lisbon")).json()["sessionId"]
    clock.advance(1)
    temp = await _temporary(client, me, "Plan a trip to Lisbon quietly")

    detail = (await client.get(f"/api/sessions/{temp}", headers=me)).json()
    assert detail["temporary"] is True
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert (await client.get(f"/api/sessions/{kept}", headers=me)).json()["temporary"] is False
    # Continued by its id, it stays temporary.
    r = await chat(client, me, "and Porto", temp)
    assert r.status_code == 200 and r.json()["sessionId"] == temp

    assert await _ids(client, me) == [kept]
    assert await _ids(client, me, q="Lisbon") == [kept]
    assert await _ids(client, me, q="quietly") == []
    for status in ("active", "archived", "trash"):
        assert temp not in await _ids(client, me, status=status)

    r = await client.get("/api/export?format=zip", headers=me)
    assert r.status_code == 200, r.text
    exported = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("conversations.json"))
    assert temp not in json.dumps(exported)
    assert kept in json.dumps(exported)
    # Its own export, when asked for, works.
    r = await client.get(f"/api/sessions/{temp}/export?format=json", headers=me)
    assert r.status_code == 200
    assert "quietly" in r.text


async def test_temporary_needs_a_new_conversation(client):
    me = await register(client)
    sid = (await chat(client, me, "hello")).json()["sessionId"]
    body = {"messages": [{"role": "user", "content": "x"}], "temporary": True, "sessionId": sid}
    r = await client.post("/api/chat", json=body, headers=me)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "temporary_needs_new_conversation"


async def test_a_temporary_chat_cannot_be_shared(client):
    me = await register(client)
    temp = await _temporary(client, me, "hello")
    r = await client.post(f"/api/sessions/{temp}/share", json={}, headers=me)
    assert r.status_code == 409
    assert r.json()["code"] == "temporary_chat"


async def test_the_sweep_deletes_it_for_good_with_every_dependent_row(
    client, clock, sessionmaker, settings
):
    me = await register(client)
    temp = await _temporary(client, me, ASK_FOR_IMAGE)
    kept = (await chat(client, me, ASK_FOR_IMAGE)).json()["sessionId"]
    detail = (await client.get(f"/api/sessions/{temp}", headers=me)).json()
    image = next(m["imageUrl"] for m in detail["messages"] if m["imageUrl"])
    for table in ("chat_message", "chat_turn", "post_draft"):
        assert await _rows(sessionmaker, table, temp) > 0, table
    async with sessionmaker() as db:
        images = int((await db.execute(sa.text("SELECT count(*) FROM stored_image"))).scalar_one())
    assert images == 2

    # Not yet idle past the TTL: the sweep leaves it.
    clock.advance(settings.session_ttl_seconds - 1)
    outcome = await sweep_expired_sessions(
        sessionmaker=sessionmaker,
        now=clock.now(),
        ttl_seconds=settings.session_ttl_seconds,
        batch_size=100,
        trigger="manual",
    )
    assert outcome.deleted_temporary == 0
    assert (await client.get(f"/api/sessions/{temp}", headers=me)).status_code == 200

    clock.advance(2)
    outcome = await sweep_expired_sessions(
        sessionmaker=sessionmaker,
        now=clock.now(),
        ttl_seconds=settings.session_ttl_seconds,
        batch_size=100,
        trigger="manual",
    )
    assert outcome.deleted_temporary == 1
    assert outcome.archived == 1  # the regular one is archived, as ever
    assert (await client.get(f"/api/sessions/{temp}", headers=me)).status_code == 404
    assert (await client.get(image, headers=me)).status_code == 404
    for table in ("chat_message", "chat_turn", "post_draft"):
        assert await _rows(sessionmaker, table, temp) == 0, table
    async with sessionmaker() as db:
        left = (
            await db.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM chat_session WHERE id = :sid),"
                    " (SELECT count(*) FROM stored_image),"
                    " (SELECT count(*) FROM audit_event WHERE session_id = :sid)"
                ),
                {"sid": temp},
            )
        ).one()
    # Gone for good: no row, no trash, no audit row naming it; the other image stays.
    assert tuple(left) == (0, 1, 0)
    assert await _ids(client, me, status="trash") == []
    assert await _ids(client, me, status="archived") == [kept]


async def test_other_devices_hear_no_session_event_of_it(live, app):
    me = await register(live)
    async with listening(live, me) as other_device:
        temp = await _temporary(live, me, "hello")
        # The turn's events still come (the device that asked follows its turn).
        await other_device.wait_for(
            lambda e: (
                e.name == "turn" and e.data.get("sessionId") == temp and e.data["status"] == "done"
            )
        )
        regular = (await chat(live, me, "hello")).json()["sessionId"]
        await other_device.wait_for(
            lambda e: e.name == "session" and e.data.get("sessionId") == regular
        )
        await live.patch(f"/api/sessions/{temp}", json={"title": "Renamed"}, headers=me)
        await live.patch(f"/api/sessions/{regular}", json={"title": "Renamed"}, headers=me)
        await other_device.wait_for(
            lambda e: e.data.get("sessionId") == regular and e.data.get("change") == "renamed"
        )
        assert all(s["sessionId"] != temp for s in other_device.of("session"))


async def test_deleting_it_skips_the_trash(client, sessionmaker):
    me = await register(client)
    temp = await _temporary(client, me, "hello")
    assert (await client.delete(f"/api/sessions/{temp}", headers=me)).status_code == 204
    assert (await client.get(f"/api/sessions/{temp}", headers=me)).status_code == 404
    assert await _ids(client, me, status="trash") == []
    assert await _rows(sessionmaker, "chat_message", temp) == 0
    async with sessionmaker() as db:
        sql = sa.text("SELECT count(*) FROM audit_event WHERE session_id = :sid")
        assert (await db.execute(sql, {"sid": temp})).scalar_one() == 0


async def test_writing_in_it_after_the_ttl_starts_another_temporary_one(client, clock, settings):
    me = await register(client)
    temp = await _temporary(client, me, "hello")
    clock.advance(settings.session_ttl_seconds + 1)
    r = await chat(client, me, "still there?", temp)
    assert r.status_code == 200, r.text
    assert r.json()["expiredSessionId"] == temp
    successor = r.json()["sessionId"]
    assert successor != temp
    detail = (await client.get(f"/api/sessions/{successor}", headers=me)).json()
    assert detail["temporary"] is True
    assert await _ids(client, me, status="archived") == []
    assert await _ids(client, me) == []


async def test_its_own_export_imports_as_a_conversation_to_keep(client):
    me = await register(client)
    temp = await _temporary(client, me, "A plan worth keeping")
    single = (await client.get(f"/api/sessions/{temp}/export?format=json", headers=me)).content
    # A regular conversation of the same id would make this file "already here"; a
    # temporary one does not count.
    r = await client.post("/api/import", files={"file": ("export.json", single)}, headers=me)
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], r.json()["skipped"]) == (1, 0)
    kept = await _ids(client, me, status="all")
    assert len(kept) == 1 and kept[0] != temp


async def _tagged_temporary(client, headers, text: str, tags: list[str]) -> str:
    temp = await _temporary(client, headers, text)
    r = await client.patch(f"/api/sessions/{temp}", json={"tags": tags}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == tags
    return temp


async def test_its_tags_count_in_no_tag_list(client):
    me = await register(client)
    kept = (await chat(client, me, "Plan a trip")).json()["sessionId"]
    r = await client.patch(f"/api/sessions/{kept}", json={"tags": ["travel"]}, headers=me)
    assert r.status_code == 200, r.text
    temp = await _tagged_temporary(client, me, "Plan a quiet trip", ["travel", "secret"])
    # Tagged in bulk too: still not counted.
    r = await client.post(
        "/api/sessions/bulk", json={"action": "tag", "ids": [temp], "tags": ["bulk"]}, headers=me
    )
    assert r.status_code == 200, r.text

    r = await client.get("/api/tags", headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == [{"tag": "travel", "count": 1}]
    # Nor does the tag filter of the list find it.
    assert await _ids(client, me, tag="secret") == []
    assert await _ids(client, me, tag="travel") == [kept]


async def test_it_counts_in_no_admin_view(client, sessionmaker):
    admin = await register(client, "root@example.com")
    await make_superuser(sessionmaker, "root@example.com")
    me = await register(client, "someone@example.com")
    kept = (await chat(client, me, "a conversation to keep")).json()["sessionId"]
    await chat(client, me, "and a second message", kept)
    for text in ("a quiet one", "another quiet one"):
        temp = await _temporary(client, me, text)
        await chat(client, me, "more", temp)

    r = await client.get("/api/admin/usage", headers=admin)
    assert r.status_code == 200, r.text
    mine = next(u for u in r.json()["items"] if u["email"] == "someone@example.com")
    assert (mine["conversations"], mine["messages"]) == (1, 4)

    r = await client.get("/api/admin/sessions/stats", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"active": 1, "archived": 0, "total": 1, "messages": 4, "users": 2}

    # The metrics' gauges read the same counts.
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    lines = r.text.splitlines()
    assert 'chatkeep_sessions{status="active"} 1.0' in lines
    assert "chatkeep_messages 4.0" in lines


async def test_it_counts_in_no_history_retention_or_trash_figure(client, clock):
    me = await register(client)
    kept = (await chat(client, me, "a conversation to keep")).json()["sessionId"]
    temp = await _temporary(client, me, "a quiet one")
    # Archive all archives (and counts) the kept one only.
    r = await client.post("/api/sessions/archive-all", headers=me)
    assert r.status_code == 200, r.text
    assert r.json() == {"archived": 1}
    assert await _ids(client, me, status="archived") == [kept]
    detail = (await client.get(f"/api/sessions/{temp}", headers=me)).json()
    assert detail["status"] == "active" and detail["temporary"] is True

    # What retention would remove: the kept one only (the sweep deletes the other).
    clock.advance(timedelta(days=31).total_seconds())
    temp = await _temporary(client, me, "a second quiet one")
    clock.advance(timedelta(days=31).total_seconds())
    r = await client.get("/api/me/retention/preview", params={"days": 30}, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["conversations"] == 1

    # Trashed in bulk with the kept one: only the kept one goes to (and counts in) the trash.
    r = await client.post(
        "/api/sessions/bulk", json={"action": "trash", "ids": [kept, temp]}, headers=me
    )
    assert r.status_code == 200, r.text
    assert await _ids(client, me, status="trash") == [kept]
    assert (await client.get(f"/api/sessions/{temp}", headers=me)).status_code == 404
    # No activity entry names it (its title would linger there), and so for a bulk delete.
    other = await _temporary(client, me, "a third quiet one")
    r = await client.post(
        "/api/sessions/bulk", json={"action": "delete", "ids": [other]}, headers=me
    )
    assert r.status_code == 200, r.text
    assert (await client.get(f"/api/sessions/{other}", headers=me)).status_code == 404
    r = await client.get("/api/activity", headers=me)
    assert r.status_code == 200, r.text
    named = [e["sessionId"] for e in r.json()["items"]]
    assert named == [kept]
