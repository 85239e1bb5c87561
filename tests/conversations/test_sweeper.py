"""The sweeper archives idle sessions exactly once per interval and never deletes."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.conversations.tasks import pause_after, sweep_expired_sessions, sweep_off_the_loop
from app.core.db import create_engine, create_sessionmaker
from app.events.bus import STAGED_KEY, EventBus, Hub
from app.jobs.models import JobKind
from app.jobs.schedule import interval_start, queue_due
from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _statuses(sessionmaker) -> dict[str, str]:
    async with sessionmaker() as s:
        rows = (await s.execute(sa.text("SELECT id, status FROM chat_session"))).all()
    return {r.id: r.status for r in rows}


async def test_sweep_archives_only_expired_sessions_in_batches(client, clock, sessionmaker):
    headers = await register(client)
    old = [(await chat(client, headers, f"old {i}")).json()["sessionId"] for i in range(5)]
    clock.advance(1000)
    fresh = (await chat(client, headers, "fresh")).json()["sessionId"]
    clock.advance(900)  # old ones idle 1900 s > 1800, fresh one 900 s

    outcome = await sweep_expired_sessions(
        sessionmaker=sessionmaker, now=clock.now(), ttl_seconds=1800, batch_size=2, trigger="manual"
    )
    assert outcome.archived == 5
    assert outcome.batches == 3
    statuses = await _statuses(sessionmaker)
    assert all(statuses[sid] == "archived" for sid in old)
    assert statuses[fresh] == "active"
    # Archived, not lost: every message is still there.
    async with sessionmaker() as s:
        assert (await s.execute(sa.text("SELECT count(*) FROM chat_message"))).scalar() == 12
    again = await sweep_expired_sessions(
        sessionmaker=sessionmaker, now=clock.now(), ttl_seconds=1800, batch_size=2, trigger="manual"
    )
    assert again.archived == 0


async def _sweep_jobs(sessionmaker) -> list:
    async with sessionmaker() as s:
        rows = await s.execute(
            sa.text(
                "SELECT scheduled_for, status, result FROM job "
                "WHERE kind = 'session_sweep' ORDER BY scheduled_for"
            )
        )
        return list(rows)


async def test_the_sweep_is_a_scheduled_run_queued_once_per_interval_across_processes(
    client, app, settings, clock, sessionmaker
):
    headers = await register(client)
    old = [(await chat(client, headers, f"old {i}")).json()["sessionId"] for i in range(3)]
    swept = settings.model_copy(update={"sweeper_enabled": True, "sweep_interval_seconds": 300})
    # The three sessions idle past the TTL, at the start of the next interval.
    clock.advance(settings.session_ttl_seconds + 1)
    clock.set(interval_start(clock.now(), 300) + timedelta(seconds=300))
    # Eight independent engines stand in for eight processes on two instances.
    makers = [create_sessionmaker(create_engine(settings)) for _ in range(8)]
    try:

        async def everyone_asks() -> int:
            queued = await asyncio.gather(
                *(queue_due(m, swept, now=clock.now(), skip={}) for m in makers)
            )
            return sum(JobKind.SESSION_SWEEP in q for q in queued)

        assert await everyone_asks() == 1
        clock.advance(299)
        assert await everyone_asks() == 0
        clock.advance(1)
        assert await everyone_asks() == 1
    finally:
        for m in makers:
            await m.kw["bind"].dispose()
    app.state.jobs.wake()
    for _ in range(600):  # a condition, not a speed: up to 30 s on a busy machine
        jobs = await _sweep_jobs(sessionmaker)
        if all(j.status == "done" for j in jobs):
            break
        await asyncio.sleep(0.05)
    assert [j.status for j in jobs] == ["done", "done"]
    # Whichever ran first archived the three; the other found nothing left to do.
    assert sorted(j.result["archived"] for j in jobs) == [0, 3]
    assert set((await _statuses(sessionmaker)).values()) == {"archived"}
    assert sorted(await _statuses(sessionmaker)) == sorted(old)
    async with sessionmaker() as s:
        runs = (
            await s.execute(sa.text("SELECT count(*) FROM sweep_run WHERE trigger = 'schedule'"))
        ).scalar()
    assert runs == 2


async def test_concurrent_manual_sweeps_never_archive_twice(client, clock, sessionmaker, settings):
    headers = await register(client)
    for i in range(30):
        await chat(client, headers, f"s{i}")
    clock.advance(2000)
    makers = [create_sessionmaker(create_engine(settings)) for _ in range(3)]
    try:
        outcomes = await asyncio.gather(
            *(
                sweep_expired_sessions(
                    sessionmaker=m,
                    now=clock.now(),
                    ttl_seconds=1800,
                    batch_size=4,
                    trigger="manual",
                )
                for m in makers
            )
        )
    finally:
        for m in makers:
            await m.kw["bind"].dispose()
    assert sum(o.archived for o in outcomes) == 30


async def test_turn_racing_the_sweeper_gets_a_consistent_answer(client, clock, sessionmaker):
    headers = await register(client)
    sid = (await chat(client, headers, "hello")).json()["sessionId"]
    clock.advance(1801)
    sweep, turn = await asyncio.gather(
        sweep_expired_sessions(
            sessionmaker=sessionmaker,
            now=clock.now(),
            ttl_seconds=1800,
            batch_size=10,
            trigger="manual",
        ),
        chat(client, headers, "am I late?", session_id=sid),
    )
    body = turn.json()
    assert body["expiredSessionId"] == sid
    assert body["sessionId"] != sid
    assert (await _statuses(sessionmaker))[sid] == "archived"
    assert sweep.archived in (0, 1)


async def test_the_app_schedules_the_sweep(settings, clock, database_url):
    from app.main import create_app

    settings.sweep_interval_seconds = 1
    settings.scheduled_jobs_enabled = True
    app = create_app(settings, clock=clock, migrate=False, run_sweeper=True)
    async with app.router.lifespan_context(app):
        clock.set(clock.now() + timedelta(seconds=5))
        for _ in range(300):  # a condition, not a speed: up to 30 s on a busy machine
            async with app.state.sessionmaker() as s:
                runs = (await s.execute(sa.text("SELECT count(*) FROM sweep_run"))).scalar()
            if runs:
                break
            await asyncio.sleep(0.1)
    assert runs >= 1


class _RecordingBus(EventBus):
    """A bus that notes which thread each of its hooks ran on, and what was sent."""

    def __init__(self) -> None:
        super().__init__(Hub(replay_size=10))
        self.threads: dict[str, set[int]] = {"before": set(), "after": set()}
        self.sent: list[dict] = []

    async def before_commit(self, db) -> None:
        self.threads["before"].add(threading.get_ident())
        self.sent.extend(e.data for e in db.info.get(STAGED_KEY, []))

    async def after_commit(self, db) -> None:
        self.threads["after"].add(threading.get_ident())
        await super().after_commit(db)


async def test_the_app_sweeps_off_its_event_loop_and_its_events_reach_the_bus(
    client, clock, sessionmaker, settings
):
    """As the app's sweeper runs it: on a loop and connections of its own, in a thread of
    its own; the events of each batch still leave through the process's bus, whose
    after-commit work runs on the process's own loop."""
    headers = await register(client)
    old = [(await chat(client, headers, f"old {i}")).json()["sessionId"] for i in range(3)]
    clock.advance(settings.session_ttl_seconds + 1)
    bus = _RecordingBus()
    settings = settings.model_copy(update={"sweep_batch_size": 2, "sweep_interval_seconds": 60})
    outcome = await sweep_off_the_loop(
        settings=settings, url=settings.database_url, now=clock.now(), bus=bus
    )
    assert outcome.archived == 3 and outcome.batches == 2
    assert all(status == "archived" for status in (await _statuses(sessionmaker)).values())
    assert sorted(e["sessionId"] for e in bus.sent) == sorted(old)
    assert {e["change"] for e in bus.sent} == {"archived"}
    main = threading.get_ident()
    assert bus.threads["before"] and main not in bus.threads["before"]
    assert bus.threads["after"] == {main}


def test_batches_are_paced_to_their_share_of_the_time():
    # Half the time busy: as long a rest as the batch took, and never less than the pause.
    assert pause_after(0.4, pause_seconds=0.05, busy_share=0.5) == pytest.approx(0.4)
    assert pause_after(0.01, pause_seconds=0.05, busy_share=0.5) == 0.05
    assert pause_after(0.3, pause_seconds=0.0, busy_share=0.25) == pytest.approx(0.9)
    assert pause_after(0.3, pause_seconds=0.05, busy_share=1.0) == 0.05
