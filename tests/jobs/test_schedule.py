"""Scheduled runs on the job queue: queued once per interval whoever asks, run by the
workers, and each purge with the injected clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app.jobs.models import JobKind
from app.jobs.schedule import interval_start, queue_due, schedules
from tests.conftest import TEST_PASSWORD, chat, login, register

pytestmark = pytest.mark.storage


async def _scheduled(sessionmaker) -> list[Any]:
    async with sessionmaker() as db:
        rows = await db.execute(
            sa.text(
                "SELECT kind, scheduled_for, status, result FROM job "
                "WHERE user_id IS NULL ORDER BY scheduled_for, kind"
            )
        )
        return list(rows)


async def run_due(app, settings) -> dict[str, int]:
    """Queues the runs due at the app's clock, lets the app's worker run them, and returns
    how many rows each removed."""
    now = app.state.clock.now()
    sessionmaker = app.state.sessionmaker
    await queue_due(sessionmaker, settings, now=now)
    app.state.jobs.wake()
    starts = {k.value: interval_start(now, i) for k, i in schedules(settings)}
    for _ in range(1200):  # waits on the runs, not on time
        rows = [r for r in await _scheduled(sessionmaker) if starts[r.kind] == r.scheduled_for]
        if len(rows) == len(starts) and all(r.status in ("done", "failed") for r in rows):
            assert all(r.status == "done" for r in rows), rows
            return {r.kind: r.result["removed"] for r in rows}
        await asyncio.sleep(0.05)
    raise AssertionError(f"the scheduled runs did not finish: {rows}")


async def test_each_interval_is_queued_once_whoever_asks(app, settings, clock):
    sessionmaker = app.state.sessionmaker
    kinds = {k.value for k, _ in schedules(settings)}
    # Four processes (their own memory of what they queued) ask at once.
    queued = await asyncio.gather(
        *(queue_due(sessionmaker, settings, now=clock.now(), skip={}) for _ in range(4))
    )
    assert sorted(k for q in queued for k in q) == sorted(kinds)
    # Within the interval, asking again queues nothing.
    clock.advance(1)
    assert await queue_due(sessionmaker, settings, now=clock.now()) == []
    before = clock.now()
    clock.advance(settings.purge_interval_seconds)
    new_interval = {
        k.value
        for k, i in schedules(settings)
        if interval_start(clock.now(), i) != interval_start(before, i)
    }
    assert JobKind.TRASH_PURGE.value in new_interval
    queued_again = await queue_due(sessionmaker, settings, now=clock.now())
    assert {k.value for k in queued_again} == new_interval
    app.state.jobs.wake()
    rows = await _scheduled(sessionmaker)
    per_slot: dict[tuple[str, Any], int] = {}
    for r in rows:
        per_slot[(r.kind, r.scheduled_for)] = per_slot.get((r.kind, r.scheduled_for), 0) + 1
    assert set(per_slot.values()) == {1}


async def test_a_scheduled_run_is_invisible_to_users(client, app, settings):
    headers = await register(client)
    await run_due(app, settings)
    job_id = (await _scheduled(app.state.sessionmaker))[0]
    async with app.state.sessionmaker() as db:
        ids = (await db.execute(sa.text("SELECT id FROM job WHERE user_id IS NULL"))).scalars()
        for i in ids:
            r = await client.get(f"/api/jobs/{i}", headers=headers)
            assert r.status_code == 404 and r.json()["code"] == "job_not_found"
    assert job_id is not None


async def test_trash_purge_runs_on_the_queue(client, app, settings, clock):
    me = await register(client)
    r = await chat(client, me, "to the trash")
    sid = r.json()["sessionId"]
    assert (await client.delete(f"/api/sessions/{sid}", headers=me)).status_code == 204
    clock.advance(timedelta(days=settings.trash_retention_days - 1).total_seconds())
    assert (await run_due(app, settings))["trash_purge"] == 0
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).status_code == 200
    clock.advance(timedelta(days=1, seconds=1).total_seconds())
    assert (await run_due(app, settings))["trash_purge"] == 1
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).status_code == 404


async def test_expired_share_links_are_purged_after_the_grace(client, app, settings, clock):
    me = await register(client)
    expiring = (await chat(client, me, "shared for a day")).json()["sessionId"]
    live = (await chat(client, me, "shared until revoked")).json()["sessionId"]
    r = await client.post(f"/api/sessions/{expiring}/share", headers=me, json={"expiresInDays": 1})
    assert r.status_code == 201, r.text
    assert (await client.post(f"/api/sessions/{live}/share", headers=me)).status_code == 201
    clock.advance(timedelta(days=1).total_seconds())  # the first link ends here

    async def links() -> int:
        async with app.state.sessionmaker() as db:
            return (await db.execute(sa.text("SELECT count(*) FROM shared_link"))).scalar_one()

    clock.advance(timedelta(days=settings.share_link_purge_grace_days - 1).total_seconds())
    assert (await run_due(app, settings))["share_link_purge"] == 0
    assert await links() == 2
    clock.advance(timedelta(days=2).total_seconds())
    assert (await run_due(app, settings))["share_link_purge"] == 1
    assert await links() == 1


async def test_idempotency_keys_are_kept_24_hours_then_forgotten(client, app, settings, clock):
    me = await register(client)
    keyed = {**me, "Idempotency-Key": "key-0001"}
    body = {"messages": [{"role": "user", "content": "hello"}]}
    first = await client.post("/api/chat", json=body, headers=keyed)
    assert first.status_code == 200, first.text

    clock.advance(timedelta(hours=23).total_seconds())
    assert (await run_due(app, settings))["idempotency_purge"] == 0
    again = await client.post("/api/chat", json=body, headers=keyed)
    assert again.json() == first.json()  # still the first turn's answer

    clock.advance(timedelta(hours=1, seconds=1).total_seconds())
    assert (await run_due(app, settings))["idempotency_purge"] == 1
    async with app.state.sessionmaker() as db:
        kept = await db.execute(
            sa.text("SELECT count(*) FROM chat_turn WHERE idempotency_key IS NOT NULL")
        )
        assert kept.scalar_one() == 0


async def test_ended_sign_ins_are_purged(client, app, settings, clock):
    headers = await register(client)
    email = (await client.get("/users/me", headers=headers)).json()["email"]
    kept = await login(client, email)
    await client.post("/auth/jwt/logout", headers=headers)

    async def count() -> int:
        async with app.state.sessionmaker() as db:
            return (await db.execute(sa.text("SELECT count(*) FROM sign_in"))).scalar_one()

    assert await count() == 2
    clock.advance(1)
    assert (await run_due(app, settings))["sign_in_purge"] == 1
    assert await count() == 1  # the signed-out one is gone; the live one stays
    assert (await client.get("/users/me", headers=kept)).status_code == 200
    clock.advance(settings.access_token_ttl_seconds + 120)
    assert (await run_due(app, settings))["sign_in_purge"] == 1
    assert await count() == 0


async def test_account_events_past_their_retention_are_purged(client, app, settings, clock):
    headers = await register(client)
    r = await client.request(
        "DELETE", "/users/me", headers=headers, json={"currentPassword": TEST_PASSWORD}
    )
    assert r.status_code == 204, r.text

    async def count() -> int:
        async with app.state.sessionmaker() as db:
            return (await db.execute(sa.text("SELECT count(*) FROM account_event"))).scalar_one()

    assert await count() == 1
    clock.advance(timedelta(days=settings.account_event_retention_days - 1).total_seconds())
    assert (await run_due(app, settings))["account_event_purge"] == 0
    assert await count() == 1
    clock.advance(timedelta(days=2).total_seconds())
    assert (await run_due(app, settings))["account_event_purge"] == 1
    assert await count() == 0
