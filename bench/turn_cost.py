"""Turn cost against history length, one store at a time, one turn at a time."""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.conversations.ids import new_session_id
from bench.data import TextSource
from bench.modes import Mode
from bench.pg import BenchServer, connect, settle
from bench.report import Report, Table, fmt_ms, fmt_ratio, percentile, ratio, ratio_goal
from bench.stores import (
    ChatkeepStore,
    FloorStore,
    MemoryStore,
    PostgresBlobStore,
    RedisStore,
    SeedSession,
    Store,
)

BENCH_USER_EMAIL = "bench-turns@example.com"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ROUNDS = 4


@dataclass
class Timing:
    store: str
    history: int
    sessions: int
    turns: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    seconds: float


def plan_sessions(history: int, turns: int) -> tuple[int, int]:
    """(sessions, turns per session) so that no session grows by more than ~10%.

    Each turn adds two messages; spreading the turns round-robin over enough sessions keeps
    the history each turn sees close to the size being measured.
    """
    per_session = max(1, history // 20)
    return math.ceil(turns / per_session), per_session


async def _make_user(url: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with connect(url) as conn:
        await conn.execute(
            "INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, "
            "is_verified) VALUES ($1, $2, 'not-a-password-hash', true, false, true)",
            user_id,
            BENCH_USER_EMAIL,
        )
    return user_id


async def _time_stores(
    stores: list[Store],
    session_ids: dict[str, list[str]],
    user_id: uuid.UUID,
    mode: Mode,
    text: TextSource,
) -> dict[str, tuple[list[float], float]]:
    """Time every store on the same history size, interleaved in rounds (store order
    rotating) so that background noise (checkpoints, the other tenants of the machine)
    falls on all of them alike."""
    # Warm-up: at least one turn on every session, so first-touch costs (cold pages,
    # full-page writes after the checkpoint that followed seeding) fall outside the timing
    # alike for every history size.
    warm: dict[str, int] = {}
    for store in stores:
        ids = session_ids[store.name]
        warm[store.name] = max(mode.warmup_turns, len(ids))
        for i in range(warm[store.name]):
            await store.turn(
                user_id=user_id, session_id=ids[i % len(ids)], message=text.user_message()
            )
    rounds = ROUNDS
    per_round = math.ceil(mode.turns / rounds)
    messages = [text.user_message() for _ in range(mode.turns)]
    samples: dict[str, list[float]] = {s.name: [] for s in stores}
    spent: dict[str, float] = {s.name: 0.0 for s in stores}
    for r in range(rounds):
        for store in stores[r % len(stores) :] + stores[: r % len(stores)]:
            mine, ids = samples[store.name], session_ids[store.name]
            for _ in range(per_round):
                if len(mine) >= mode.turns or (
                    len(mine) >= mode.min_turns and spent[store.name] > mode.turn_cap_seconds
                ):
                    break
                index = len(mine) + warm[store.name]
                t0 = time.perf_counter_ns()
                await store.turn(
                    user_id=user_id, session_id=ids[index % len(ids)], message=messages[len(mine)]
                )
                elapsed = (time.perf_counter_ns() - t0) / 1e9
                mine.append(elapsed * 1000)
                spent[store.name] += elapsed
    return {name: (samples[name], spent[name]) for name in samples}


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL) or None
    url = await server.migrated_database("turns")
    user_id = await _make_user(url)
    text = TextSource(seed=1)

    stores: list[Store] = [MemoryStore()]
    if redis_url:
        try:
            stores.append(await RedisStore.connect(redis_url, key_prefix=f"{server.prefix}:"))
        except Exception as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
            report.note(f"Redis at {redis_url} unavailable ({reason}); its column is empty")
    stores.append(await PostgresBlobStore.connect(url))
    stores.append(ChatkeepStore.connect(url))
    stores.append(await FloorStore.connect(url))

    timings: list[Timing] = []
    try:
        for history in mode.history_sizes:
            sessions_needed, _ = plan_sessions(history, mode.turns + mode.warmup_turns)
            conversations = [text.conversation(history) for _ in range(min(sessions_needed, 8))]
            seeded_at = datetime.now(UTC) - timedelta(seconds=5)
            session_ids: dict[str, list[str]] = {}
            for store in stores:
                seeds = [
                    SeedSession(
                        new_session_id(seeded_at),
                        user_id,
                        conversations[i % len(conversations)],
                        seeded_at,
                    )
                    for i in range(sessions_needed)
                ]
                await store.seed(seeds)
                session_ids[store.name] = [s.session_id for s in seeds]
            async with connect(url) as conn:
                await settle(conn, "chat_session", "chat_message", "sessions")
            results = await _time_stores(stores, session_ids, user_id, mode, text)
            for store in stores:
                samples, seconds = results[store.name]
                timing = Timing(
                    store=store.name,
                    history=history,
                    sessions=sessions_needed,
                    turns=len(samples),
                    median_ms=percentile(samples, 50),
                    p99_ms=percentile(samples, 99),
                    mean_ms=sum(samples) / len(samples),
                    seconds=seconds,
                )
                timings.append(timing)
                print(
                    f"  turn cost: {store.name:<28} history {history:>6}: "
                    f"median {fmt_ms(timing.median_ms)} ms, p99 {fmt_ms(timing.p99_ms)} ms "
                    f"({timing.turns} turns, {seconds:.1f}s)",
                    flush=True,
                )
    finally:
        for store in stores:
            await store.close()
        await server.drop(url)

    by = {(t.store, t.history): t for t in timings}
    names = [s.name for s in stores]
    chatkeep = ChatkeepStore.name
    floor = FloorStore.name

    table = Table(
        "Turn cost vs history length (ms per turn, one client, sequential turns)",
        [
            "store",
            *[f"{h:,} msgs median / p99" for h in mode.history_sizes],
            "growth 10→max (median)",
        ],
    )
    for name in names:
        cells = []
        for h in mode.history_sizes:
            t = by.get((name, h))
            cells.append(f"{fmt_ms(t.median_ms)} / {fmt_ms(t.p99_ms)}" if t else "—")
        first, last = by.get((name, mode.history_sizes[0])), by.get((name, mode.history_sizes[-1]))
        growth = ratio(last.median_ms, first.median_ms) if first and last else None
        table.add(name, *cells, fmt_ratio(growth))
    table.notes.append(
        f"{mode.turns} timed turns per cell (fewer where a cell used up its "
        f"{mode.turn_cap_seconds:g}s budget; at least {mode.min_turns}), after "
        "warm-up turns (one on every seeded session, at least "
        f"{mode.warmup_turns}); the stores take turns in {ROUNDS} interleaved "
        "rounds; turns spread round-robin over enough seeded sessions that no history grows "
        "by more than ~10% (at 10 messages: a timed turn sees 12, after its warm-up turn)."
    )
    table.notes.append(
        "Every design gives the assistant the same context (the newest ≤50 messages within "
        "24,000 chars) and uses the built-in echo assistant; the floor writes a constant reply "
        "and reads no context."
    )
    report.show(table)

    vs = Table(
        "Chatkeep's turn against each design (median, same run; >1 means Chatkeep is faster)",
        ["history", *[n for n in names if n != chatkeep]],
    )
    for h in mode.history_sizes:
        ck = by.get((chatkeep, h))
        row = []
        for n in names:
            if n == chatkeep:
                continue
            other = by.get((n, h))
            row.append(fmt_ratio(ratio(other.median_ms, ck.median_ms)) if other and ck else "—")
        vs.add(f"{h:,}", *row)
    vs.notes.append(
        "Each cell is that design's median turn time divided by Chatkeep's. The in-memory "
        "dict and Redis (no fsync) are not durable; Postgres JSONB, Chatkeep and the floor "
        "commit to disk each turn."
    )
    report.show(vs)

    def median(store: str, history: int) -> float | None:
        t = by.get((store, history))
        return t.median_ms if t else None

    smallest, largest = mode.history_sizes[0], mode.history_sizes[-1]
    report.goals.append(
        ratio_goal(
            f"Chatkeep turn at {largest:,} msgs / at {smallest:,} (median)",
            "≤ 1.2x",
            median(chatkeep, largest),
            median(chatkeep, smallest),
            lambda r: r <= 1.2,
        )
    )
    if 1000 in mode.history_sizes:
        for blob in (RedisStore.name, PostgresBlobStore.name):
            report.goals.append(
                ratio_goal(
                    f"{blob} turn / Chatkeep turn at 1,000 msgs (median)",
                    "≥ 3x",
                    median(blob, 1000),
                    median(chatkeep, 1000),
                    lambda r: r >= 3,
                )
            )
    report.goals.append(
        ratio_goal(
            f"Chatkeep turn / floor turn at {smallest} msgs (median)",
            "≤ 1.5x",
            median(chatkeep, smallest),
            median(floor, smallest),
            lambda r: r <= 1.5,
        )
    )
    return {"turn_cost": [t.__dict__ for t in timings]}
