"""Turn cost against history length, one store at a time, one turn at a time."""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import dataclass, field
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
# The in-process turn against the bare-asyncpg floor of the same two transactions.
FLOOR_GOAL = 1.3


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


@dataclass
class Cell:
    """One store at one history size: its seeded sessions and what was measured."""

    store: Store
    history: int
    ids: list[str]
    warm: int = 0
    samples: list[float] = field(default_factory=list)
    spent: float = 0.0


async def _time_cells(cells: list[Cell], user_id: uuid.UUID, mode: Mode, text: TextSource) -> None:
    """Time every cell, interleaved: in each round every (store, size) pair takes its
    share of turns, in an order that rotates, so background noise (checkpoints, other
    tenants of the machine) falls on all designs and all sizes alike."""
    # Warm-up: at least one turn on every session, so first-touch costs (cold pages,
    # full-page writes after the checkpoint that followed seeding) stay out of the timing.
    for cell in cells:
        cell.warm = max(mode.warmup_turns, len(cell.ids))
        for i in range(cell.warm):
            await cell.store.turn(
                user_id=user_id, session_id=cell.ids[i % len(cell.ids)], message=text.user_message()
            )
    per_round = math.ceil(mode.turns / ROUNDS)
    messages = [text.user_message() for _ in range(mode.turns)]
    for r in range(ROUNDS):
        shift = (r * len(cells)) // ROUNDS
        for cell in cells[shift:] + cells[:shift]:
            for _ in range(per_round):
                n = len(cell.samples)
                if n >= mode.turns or (n >= mode.min_turns and cell.spent > mode.turn_cap_seconds):
                    break
                sid = cell.ids[(n + cell.warm) % len(cell.ids)]
                t0 = time.perf_counter_ns()
                await cell.store.turn(user_id=user_id, session_id=sid, message=messages[n])
                elapsed = (time.perf_counter_ns() - t0) / 1e9
                cell.samples.append(elapsed * 1000)
                cell.spent += elapsed


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
        cells: list[Cell] = []
        seeded_at = datetime.now(UTC) - timedelta(seconds=5)
        for history in mode.history_sizes:
            sessions_needed, _ = plan_sessions(history, mode.turns + mode.warmup_turns)
            conversations = [text.conversation(history) for _ in range(min(sessions_needed, 8))]
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
                cells.append(Cell(store, history, [s.session_id for s in seeds]))
        async with connect(url) as conn:
            await settle(conn, "chat_session", "chat_message", "sessions")
        print(f"  turn cost: seeded {len(cells)} cells, timing…", flush=True)
        await _time_cells(cells, user_id, mode, text)
        for cell in cells:
            timing = Timing(
                store=cell.store.name,
                history=cell.history,
                sessions=len(cell.ids),
                turns=len(cell.samples),
                median_ms=percentile(cell.samples, 50),
                p99_ms=percentile(cell.samples, 99),
                mean_ms=sum(cell.samples) / len(cell.samples),
                seconds=cell.spent,
            )
            timings.append(timing)
            print(
                f"  turn cost: {cell.store.name:<28} history {cell.history:>6}: "
                f"median {fmt_ms(timing.median_ms)} ms, p99 {fmt_ms(timing.p99_ms)} ms "
                f"({timing.turns} turns, {cell.spent:.1f}s)",
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
        row: list[str] = []
        for h in mode.history_sizes:
            t = by.get((name, h))
            row.append(f"{fmt_ms(t.median_ms)} / {fmt_ms(t.p99_ms)}" if t else "—")
        first, last = by.get((name, mode.history_sizes[0])), by.get((name, mode.history_sizes[-1]))
        growth = ratio(last.median_ms, first.median_ms) if first and last else None
        table.add(name, *row, fmt_ratio(growth))
    table.notes.append(
        f"{mode.turns} timed turns per cell (fewer where a cell used up its "
        f"{mode.turn_cap_seconds:g}s budget; at least {mode.min_turns}), after "
        "warm-up turns (one on every seeded session, at least "
        f"{mode.warmup_turns}); all stores and sizes take turns in {ROUNDS} interleaved "
        "rounds; turns spread round-robin over enough seeded sessions that no history grows "
        "by more than ~10% (at 10 messages: a timed turn sees 12, after its warm-up turn)."
    )
    table.notes.append(
        "Every design gives the assistant the same context (the newest ≤50 messages within "
        "24,000 chars) and uses the built-in echo assistant; the floor reads the newest 50 "
        "messages and writes a constant reply."
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
            # Against the floor of the two-transaction turn (bench/stores.py FloorStore).
            f"Chatkeep turn / floor turn at {smallest} msgs (median)",
            f"≤ {FLOOR_GOAL}x",
            median(chatkeep, smallest),
            median(floor, smallest),
            lambda r: r <= FLOOR_GOAL,
        )
    )
    return {"turn_cost": [t.__dict__ for t in timings]}
