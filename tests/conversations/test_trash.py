"""The trash: delete, undo, delete for good, the purge, bulk actions and the audit trail."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.conversations.tasks import purge_trash
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

ASK_FOR_IMAGE = "Create a Facebook post about Diwali with image"


async def _start(client, headers, text, clock) -> str:
    clock.advance(1)
    r = await chat(client, headers, text)
    assert r.status_code == 200, r.text
    return r.json()["sessionId"]


async def _ids(client, headers, **params) -> list[str]:
    r = await client.get("/api/sessions", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def _count(sessionmaker, sql: str, **params) -> int:
    async with sessionmaker() as db:
        return int((await db.execute(sa.text(sql), params)).scalar_one())


async def _make_superuser(client, sessionmaker, email="root@example.com") -> dict[str, str]:
    headers = await register(client, email)
    async with sessionmaker() as s:
        await s.execute(
            sa.text("UPDATE app_user SET is_superuser = true WHERE email = :e"), {"e": email}
        )
        await s.commit()
    return headers


async def test_delete_moves_to_the_trash_and_restore_brings_everything_back(
    client, clock, settings
):
    me = await register(client)
    sid = await _start(client, me, ASK_FOR_IMAGE, clock)
    await client.patch(f"/api/sessions/{sid}", json={"title": "Diwali post"}, headers=me)
    await client.post(f"/api/sessions/{sid}/archive", headers=me)
    before = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    image = next(m["imageUrl"] for m in before["messages"] if m["imageUrl"])
    drafts = (await client.get(f"/api/sessions/{sid}/drafts", headers=me)).json()
    other = await _start(client, me, "something else", clock)

    assert (await client.delete(f"/api/sessions/{sid}", headers=me)).status_code == 204
    trashed = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert trashed["status"] == "trashed"
    now = clock.now()
    assert trashed["purgeAt"].startswith(
        (now + timedelta(days=settings.trash_retention_days)).date().isoformat()
    )
    # The trash is its own list: not in "all", not in search, unless asked for.
    assert await _ids(client, me) == [other]
    assert await _ids(client, me, status="trash") == [sid]
    assert sid not in await _ids(client, me, q="Diwali")
    assert await _ids(client, me, q="Diwali", status="trash") == [sid]

    r = await client.post(f"/api/sessions/{sid}/restore", headers=me)
    assert r.status_code == 200
    # Back as it was: archived, with its title, messages, drafts and image.
    assert r.json()["status"] == "archived"
    assert r.json()["purgeAt"] is None
    after = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert after["title"] == "Diwali post"
    assert after["messages"] == before["messages"]
    assert (await client.get(f"/api/sessions/{sid}/drafts", headers=me)).json() == drafts
    assert (await client.get(image, headers=me)).status_code == 200
    assert set(await _ids(client, me)) == {sid, other}
    assert await _ids(client, me, status="trash") == []


async def test_permanent_delete_removes_the_images_and_is_a_404(client, clock, sessionmaker):
    me = await register(client)
    sid = await _start(client, me, ASK_FOR_IMAGE, clock)
    keep = await _start(client, me, ASK_FOR_IMAGE, clock)
    body = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    image = next(m["imageUrl"] for m in body["messages"] if m["imageUrl"])
    images_before = await _count(sessionmaker, "SELECT count(*) FROM stored_image")
    assert images_before == 2

    await client.delete(f"/api/sessions/{sid}", headers=me)  # to the trash first
    assert (await client.get(image, headers=me)).status_code == 200
    r = await client.delete(f"/api/sessions/{sid}", params={"permanent": "true"}, headers=me)
    assert r.status_code == 204
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).status_code == 404
    assert (await client.post(f"/api/sessions/{sid}/restore", headers=me)).status_code == 404
    assert (await client.get(image, headers=me)).status_code == 404
    # The other conversation's image stays.
    assert await _count(sessionmaker, "SELECT count(*) FROM stored_image") == 1
    assert await _ids(client, me) == [keep]


async def test_a_published_posts_image_outlives_the_conversation(client, clock, sessionmaker):
    me = await register(client)
    sid = await _start(client, me, ASK_FOR_IMAGE, clock)
    r = await chat(client, me, "post it", sid)
    assert r.status_code == 200, r.text
    assert await _count(sessionmaker, "SELECT count(*) FROM published_post") == 1
    await client.delete(f"/api/sessions/{sid}?permanent=true", headers=me)
    posts = (await client.get("/api/posts", headers=me)).json()
    assert (await client.get(posts["posts"][0]["imageUrl"], headers=me)).status_code == 200


async def test_another_users_conversation_is_a_404_for_trash_restore_and_delete(client, clock):
    owner = await register(client)
    stranger = await register(client)
    sid = await _start(client, owner, "mine", clock)
    for method, url in [
        ("DELETE", f"/api/sessions/{sid}"),
        ("DELETE", f"/api/sessions/{sid}?permanent=true"),
        ("POST", f"/api/sessions/{sid}/restore"),
    ]:
        r = await client.request(method, url, headers=stranger)
        assert r.status_code == 404, (method, url)
    assert (await client.get(f"/api/sessions/{sid}", headers=owner)).json()["status"] == "active"


async def test_a_chat_turn_on_a_trashed_conversation_starts_a_new_one(client, clock):
    me = await register(client)
    sid = await _start(client, me, "first", clock)
    await client.delete(f"/api/sessions/{sid}", headers=me)
    r = await chat(client, me, "are you there?", sid)
    assert r.status_code == 200
    assert r.json()["sessionId"] != sid
    assert r.json()["expiredSessionId"] == sid
    # The trashed one is untouched: still in the trash, still one message pair.
    trashed = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert trashed["status"] == "trashed"
    assert trashed["messageCount"] == 2


async def test_the_purge_deletes_expired_trash_once_with_images(
    client, clock, sessionmaker, settings
):
    me = await register(client)
    old = [await _start(client, me, ASK_FOR_IMAGE, clock) for _ in range(3)]
    for sid in old:
        await client.delete(f"/api/sessions/{sid}", headers=me)
    clock.advance(timedelta(days=settings.trash_retention_days - 1).total_seconds())
    recent = await _start(client, me, "trashed later", clock)
    await client.delete(f"/api/sessions/{recent}", headers=me)
    kept = await _start(client, me, "never trashed", clock)
    clock.advance(timedelta(days=1, seconds=1).total_seconds())

    # Two purges at once, batches of one: each conversation is purged exactly once.
    counts = await asyncio.gather(
        purge_trash(sessionmaker=sessionmaker, now=clock.now(), batch_size=1),
        purge_trash(sessionmaker=sessionmaker, now=clock.now(), batch_size=1),
    )
    assert sum(counts) == 3
    assert await _ids(client, me, status="trash") == [recent]
    assert await _ids(client, me) == [kept]
    for sid in old:
        assert (await client.get(f"/api/sessions/{sid}", headers=me)).status_code == 404
    assert await _count(sessionmaker, "SELECT count(*) FROM stored_image") == 0
    purges = await _count(
        sessionmaker, "SELECT count(DISTINCT session_id) FROM audit_event WHERE action = 'purge'"
    )
    assert purges == await _count(
        sessionmaker, "SELECT count(*) FROM audit_event WHERE action = 'purge'"
    )
    assert purges == 3


async def test_bulk_actions_are_all_or_nothing_and_owner_scoped(client, clock):
    me = await register(client)
    stranger = await register(client)
    a = await _start(client, me, "alpha", clock)
    b = await _start(client, me, "beta", clock)
    theirs = await _start(client, stranger, "theirs", clock)

    r = await client.post(
        "/api/sessions/bulk", json={"action": "trash", "ids": [a, b, theirs]}, headers=me
    )
    assert r.status_code == 404
    assert r.json()["notFound"] == [theirs]
    assert set(await _ids(client, me)) == {a, b}  # nothing changed
    assert await _ids(client, stranger) == [theirs]

    r = await client.post("/api/sessions/bulk", json={"action": "trash", "ids": [a, b]}, headers=me)
    assert r.status_code == 200
    assert r.json() == {"action": "trash", "ids": [a, b]}
    assert set(await _ids(client, me, status="trash")) == {a, b}

    r = await client.post("/api/sessions/bulk", json={"action": "restore", "ids": [a]}, headers=me)
    assert r.status_code == 200
    assert await _ids(client, me, status="active") == [a]
    r = await client.post("/api/sessions/bulk", json={"action": "archive", "ids": [a]}, headers=me)
    assert await _ids(client, me, status="archived") == [a]
    r = await client.post("/api/sessions/bulk", json={"action": "delete", "ids": [b]}, headers=me)
    assert (await client.get(f"/api/sessions/{b}", headers=me)).status_code == 404
    bad = await client.post(
        "/api/sessions/bulk", json={"action": "explode", "ids": [a]}, headers=me
    )
    assert bad.status_code == 422


async def test_audit_trail_for_the_owner_and_for_superusers(client, clock, sessionmaker, settings):
    me = await register(client)
    other = await register(client)
    admin = await _make_superuser(client, sessionmaker)
    sid = await _start(client, me, "audited", clock)
    gone = await _start(client, me, "to be cleared", clock)
    theirs = await _start(client, other, "someone else's", clock)
    await client.delete(f"/api/sessions/{sid}", headers=me)
    await client.post(f"/api/sessions/{sid}/restore", headers=me)
    await client.delete(f"/api/sessions/{sid}?permanent=true", headers=me)
    await client.delete(f"/api/sessions/{theirs}", headers=other)
    assert (await client.delete(f"/api/admin/sessions/{gone}", headers=admin)).status_code == 204

    mine = (await client.get("/api/activity", headers=me)).json()["items"]
    assert [(e["action"], e["sessionId"]) for e in mine] == [
        ("admin_delete", gone),
        ("delete", sid),
        ("restore", sid),
        ("trash", sid),
    ]
    assert {e["title"] for e in mine} == {"audited", "to be cleared"}
    admin_id = (await client.get("/users/me", headers=admin)).json()["id"]
    my_id = (await client.get("/users/me", headers=me)).json()["id"]
    assert mine[0]["actorId"] == admin_id
    assert all(e["actorId"] == my_id for e in mine[1:])
    assert all(e["ip"] == "127.0.0.1" for e in mine)
    assert all(e["at"] for e in mine)

    # A user never sees another's activity; a superuser sees everyone's.
    assert (await client.get("/api/admin/activity", headers=me)).status_code == 403
    everyone = (await client.get("/api/admin/activity", headers=admin)).json()["items"]
    assert len(everyone) == 5
    assert theirs in {e["sessionId"] for e in everyone}
    theirs_only = await client.get(
        "/api/admin/activity", params={"userId": mine[0]["userId"]}, headers=admin
    )
    assert len(theirs_only.json()["items"]) == 4

    page = (await client.get("/api/activity", params={"limit": 3}, headers=me)).json()
    rest = await client.get("/api/activity", params={"before": page["nextBefore"]}, headers=me)
    assert [e["id"] for e in page["items"] + rest.json()["items"]] == [e["id"] for e in mine]

    # The purge is recorded too, with no actor.
    await client.delete(f"/api/sessions/{theirs}", headers=other)
    clock.advance(timedelta(days=settings.trash_retention_days, seconds=1).total_seconds())
    assert await purge_trash(sessionmaker=sessionmaker, now=clock.now(), batch_size=10) == 1
    last = (await client.get("/api/activity", headers=other)).json()["items"][0]
    assert (last["action"], last["sessionId"], last["actorId"]) == ("purge", theirs, None)
