"""Retention with the injected clock: the setting and its preview, pinned conversations
exempt, the operator maximum, Undo from the trash, and the counts of each run."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.conversations.retention import apply_retention
from tests.conftest import chat, register
from tests.jobs.test_schedule import run_due

pytestmark = pytest.mark.storage


async def _start(client, headers, text) -> str:
    r = await chat(client, headers, text)
    assert r.status_code == 200, r.text
    return r.json()["sessionId"]


async def _ids(client, headers, **params) -> list[str]:
    r = await client.get("/api/sessions", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return sorted(i["id"] for i in r.json()["items"])


async def _run(app, settings, maximum=None, skip_trash=False) -> int:
    return await apply_retention(
        sessionmaker=app.state.sessionmaker,
        now=app.state.clock.now(),
        maximum=maximum,
        trash_days=settings.trash_retention_days,
        batch_size=2,
        skip_trash=skip_trash,
    )


async def test_retention_trashes_idle_conversations_but_not_pinned_ones(
    client, app, settings, clock
):
    me = await register(client)
    other = await register(client)
    old = [await _start(client, me, f"old {i}") for i in range(3)]
    pinned = await _start(client, me, "pinned")
    r = await client.patch(f"/api/sessions/{pinned}", json={"pinned": True}, headers=me)
    assert r.status_code == 200, r.text
    theirs = await _start(client, other, "someone else's, no retention")
    clock.advance(timedelta(days=31).total_seconds())
    recent = await _start(client, me, "recent")

    # Off by default: nothing happens.
    assert (await client.get("/api/me/retention", headers=me)).json()["days"] is None
    assert await _run(app, settings) == 0

    r = await client.get("/api/me/retention/preview", params={"days": 30}, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["conversations"] == 3
    r = await client.get("/api/me/retention/preview", params={"days": 45}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "invalid_retention"
    r = await client.put("/api/me/retention", json={"days": 30}, headers=me)
    assert r.status_code == 200 and r.json()["effectiveDays"] == 30

    assert await _run(app, settings) == 3
    assert await _ids(client, me) == sorted([pinned, recent])
    assert await _ids(client, me, status="trash") == sorted(old)
    assert await _ids(client, other) == [theirs]
    # Nothing it removed is searchable.
    r = await client.get("/api/sessions", params={"q": "old"}, headers=me)
    assert r.json()["items"] == []

    # Undo works from the trash.
    r = await client.post(f"/api/sessions/{old[0]}/restore", headers=me)
    assert r.status_code == 200, r.text
    assert old[0] in await _ids(client, me)

    # The counts of the run, for the user and for administrators.
    runs = (await client.get("/api/me/retention", headers=me)).json()["runs"]
    assert [(r["days"], r["trashed"]) for r in runs] == [(30, 3)]
    async with app.state.sessionmaker() as db:
        await db.execute(
            sa.text("UPDATE app_user SET is_superuser = true WHERE id = :id"),
            {"id": (await client.get("/users/me", headers=other)).json()["id"]},
        )
        await db.commit()
    r = await client.get("/api/admin/retention-runs", headers=other)
    assert r.status_code == 200, r.text
    assert [(x["trashed"], x["days"]) for x in r.json()] == [(3, 30)]
    assert (await client.get("/api/admin/retention-runs", headers=me)).status_code == 403


async def test_the_operator_maximum_applies_to_everyone(client, app, settings, clock):
    off = await register(client)
    long = await register(client)
    a = await _start(client, off, "retention off")
    b = await _start(client, long, "retention a year")
    assert (await client.put("/api/me/retention", json={"days": 365}, headers=long)).is_success
    clock.advance(timedelta(days=100).total_seconds())

    # A year chosen, 90 days at most: the 90 apply, to both users.
    r = await client.get("/api/me/retention/preview", params={"days": 365}, headers=long)
    assert r.json()["effectiveDays"] == 365 and r.json()["conversations"] == 0
    assert await _run(app, settings, maximum=90) == 2
    assert await _ids(client, off, status="trash") == [a]
    assert await _ids(client, long, status="trash") == [b]


async def test_retention_is_a_scheduled_run(client, app, settings, clock):
    me = await register(client)
    sid = await _start(client, me, "idle")
    assert (await client.put("/api/me/retention", json={"days": 90}, headers=me)).is_success
    clock.advance(timedelta(days=91).total_seconds())
    assert (await run_due(app, settings))["retention"] == 1
    assert await _ids(client, me, status="trash") == [sid]


async def test_an_operator_can_skip_the_trash(client, app, settings, clock):
    me = await register(client)
    sid = await _start(client, me, "gone for good")
    assert (await client.put("/api/me/retention", json={"days": 30}, headers=me)).is_success
    clock.advance(timedelta(days=31).total_seconds())
    assert await _run(app, settings, skip_trash=True) == 1
    assert await _ids(client, me, status="trash") == []
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).status_code == 404
    async with app.state.sessionmaker() as db:
        left = await db.execute(
            sa.text("SELECT count(*) FROM chat_message WHERE session_id = :s"), {"s": sid}
        )
        assert left.scalar_one() == 0
    runs = (await client.get("/api/me/retention", headers=me)).json()["runs"]
    assert [r["trashed"] for r in runs] == [1]
