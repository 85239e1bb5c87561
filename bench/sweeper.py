"""The sweeper at scale: archive a backlog of expired sessions while users keep chatting."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.conversations.ids import new_session_id
from app.conversations.tasks import sweep_expired_sessions, sweep_off_the_loop
from bench.data import TextSource
from bench.modes import Mode
from bench.pg import BenchServer, connect, indexes_deferred, settle
from bench.report import Report, Table, fmt_ms, fmt_ratio, percentile, ratio_goal
from bench.stores import (
    SESSION_TTL_SECONDS,
    ChatkeepStore,
    SeedSession,
    bench_settings,
    copy_chatkeep_sessions,
)

_USERS = """
INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, is_verified)
SELECT gen_random_uuid(), 'sweep-' || g || '@example.com', 'not-a-password-hash', true, false, true
FROM generate_series(1, $1) AS g
"""

_EXPIRED = """
WITH u AS (SELECT array_agg(id ORDER BY id) AS ids FROM app_user WHERE email LIKE 'sweep-%')
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at, message_count)
SELECT 'session_' || (1700000000000 + g) || '_' || md5(g::text),
       u.ids[1 + g % cardinality(u.ids)],
       'Expired conversation ' || g,
       'active',
       now() - interval '3 days' - g * interval '1 second',
       now() - interval '2 days' - g * interval '100 ms',
       4
FROM generate_series(1, $1) AS g, u
"""


async def _drive(
    store: ChatkeepStore,
    user_id: uuid.UUID,
    session_ids: list[str],
    text: TextSource,
    keep_going: Callable[[], bool],
) -> list[float]:
    """One client per session, each turn after the last, until `keep_going` says stop."""
    samples: list[float] = []

    async def client(session_id: str) -> None:
        while keep_going():
            message = text.user_message()
            t0 = time.perf_counter_ns()
            await store.turn(user_id=user_id, session_id=session_id, message=message)
            samples.append((time.perf_counter_ns() - t0) / 1e6)

    await asyncio.gather(*(client(sid) for sid in session_ids))
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50": percentile(samples, 50), "p99": percentile(samples, 99)}


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    url = await server.migrated_database("sweep")
    n = mode.sweep_sessions
    users = max(10, min(1000, n // 100))
    text = TextSource(seed=3)
    live_user = uuid.uuid4()
    now = datetime.now(UTC)
    live = [
        SeedSession(new_session_id(now), live_user, text.conversation(20), now)
        for _ in range(mode.sweep_live_clients)
    ]
    async with connect(url) as conn:
        t0 = time.perf_counter()
        await conn.execute(_USERS, users)
        await conn.execute(
            "INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, "
            "is_verified) VALUES ($1, 'sweep-live@example.org', 'x', true, false, true)",
            live_user,
        )
        async with indexes_deferred(conn, "chat_session"):
            await conn.execute(_EXPIRED, n)
        load_seconds = time.perf_counter() - t0
        await copy_chatkeep_sessions(conn, live)
        await settle(conn, "app_user", "chat_session", "chat_message")
    print(f"  sweeper: {n:,} expired sessions loaded in {load_seconds:.1f}s", flush=True)

    store = ChatkeepStore.connect(url)
    ids = [s.session_id for s in live]
    settings = bench_settings(url)
    batch_size = settings.sweep_batch_size
    try:
        for sid in ids:  # warm the pool and the statement caches
            await store.turn(user_id=live_user, session_id=sid, message=text.user_message())
        t_before = time.perf_counter()
        before = await _drive(
            store,
            live_user,
            ids,
            text,
            lambda: time.perf_counter() - t_before < mode.sweep_before_seconds,
        )

        sweep_started = time.perf_counter()
        # As the app's scheduled run does it: a thread, a loop and connections of its own.
        as_the_app = settings.model_copy(update={"session_ttl_seconds": SESSION_TTL_SECONDS})
        sweep = asyncio.create_task(
            sweep_off_the_loop(settings=as_the_app, url=url, now=datetime.now(UTC))
        )
        during = await _drive(store, live_user, ids, text, lambda: not sweep.done())
        outcome = await sweep
        sweep_seconds = time.perf_counter() - sweep_started

        t_idle = time.perf_counter()
        idle = await sweep_expired_sessions(
            sessionmaker=store.sessionmaker,
            now=datetime.now(UTC) + timedelta(seconds=1),
            ttl_seconds=SESSION_TTL_SECONDS,
            batch_size=batch_size,
            trigger="manual",
        )
        idle_seconds = time.perf_counter() - t_idle
        async with connect(url) as conn:
            still_active = await conn.fetchval(
                "SELECT count(*) FROM chat_session WHERE status = 'active'"
            )
    finally:
        await store.close()
        await server.drop(url)

    if outcome.archived != n or idle.archived != 0 or still_active != len(ids):
        report.note(
            f"sweeper: archived {outcome.archived:,} of {n:,} (then {idle.archived} more); "
            f"{still_active} sessions still active, expected {len(ids)}"
        )
    rate = outcome.archived / sweep_seconds if sweep_seconds else 0.0
    table = Table(
        f"Sweeper: archiving {n:,} expired sessions while {len(ids)} clients chat",
        ["figure", "value"],
    )
    table.add(
        "sessions archived", f"{outcome.archived:,} in {outcome.batches} batches of {batch_size:,}"
    )
    table.add("sweep time", f"{sweep_seconds:.1f} s ({rate:,.0f} sessions/s)")
    table.add("sweep with nothing to archive, right after", f"{idle_seconds * 1000:.1f} ms")
    for when, samples in (("before", before), ("during", during)):
        table.add(
            f"chat turn {when} the sweep: median / p99",
            f"{fmt_ms(percentile(samples, 50))} / {fmt_ms(percentile(samples, 99))} ms "
            f"({len(samples)} turns)",
        )
    p99_ratio = percentile(during, 99) / percentile(before, 99) if before and during else None
    table.add("p99 during / before", fmt_ratio(p99_ratio))
    table.notes.append(
        "The app's own `sweep_expired_sessions` (batches FOR UPDATE SKIP LOCKED) runs as the "
        "app's sweeper runs it: in a thread of its own with its own event loop and connections, "
        f"batches of {batch_size:,} paced to SWEEP_BUSY_SHARE={settings.sweep_busy_share} of "
        "its time; the chat turns run on this process's main loop and pool. "
        "Expired sessions were bulk-loaded with generate_series, indexes rebuilt after "
        f"({load_seconds:.1f} s), across "
        f"{users:,} users, without messages (the sweep never reads them)."
    )
    report.show(table)
    report.goals.append(
        ratio_goal(
            "chat turn p99 during the sweep / before it",
            "≤ 2x",
            percentile(during, 99),
            percentile(before, 99),
            lambda r: r <= 2,
        )
    )
    return {
        "sweeper": {
            "sessions": n,
            "archived": outcome.archived,
            "batches": outcome.batches,
            "batch_size": batch_size,
            "load_seconds": load_seconds,
            "sweep_seconds": sweep_seconds,
            "idle_sweep_seconds": idle_seconds,
            "before_ms": _summary(before),
            "during_ms": _summary(during),
        }
    }
