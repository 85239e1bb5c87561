"""What encryption at rest costs a chat turn: the same in-process turn (`chat_turn` as in
the turn-cost section) with and without ENCRYPTION_KEYS, on one database.

With keys, each turn seals both messages (AES-256-GCM), opens the context it reads, and
writes one blind-index row per message (keyed hashes of its words and prefixes). The two
setups take turns in rounds, on conversations of a few turns, so both see the same
machine load; the figure is the median wall time per turn and the ratio.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from app.core.db import create_engine, create_sessionmaker
from app.encryption.crypto import generate_key_line
from bench.modes import Mode
from bench.pg import BenchServer
from bench.report import Report, Table, fmt_ms, fmt_ratio, ratio
from bench.stores import ChatkeepStore, bench_settings
from bench.turn_cost import _make_user

# A typical message: about 60 words, some repeated.
MESSAGE = (
    "Could you help me plan a three day trip to Lisbon in early spring, with one day in "
    "Sintra, a good bakery for pastel de nata near the hotel, a walk along the river at "
    "sunset, and a few museums that are quiet on weekday mornings? I would also like a "
    "restaurant with fresh fish and a view, not too expensive, and tips for the trams."
)
SESSIONS = 10


def _stores(url: str) -> dict[str, ChatkeepStore]:
    sealed_settings = bench_settings(url).model_copy(
        update={"encryption_keys": generate_key_line("bench")}
    )
    engine = create_engine(sealed_settings, url)
    return {
        "without ENCRYPTION_KEYS": ChatkeepStore.connect(url),
        "with ENCRYPTION_KEYS": ChatkeepStore(engine, create_sessionmaker(engine)),
    }


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    url = await server.migrated_database("encryption")
    user_id = await _make_user(url)
    stores = _stores(url)
    turns = max(mode.min_turns, min(mode.turns, 400))
    sessions: dict[str, list[str]] = {}
    samples: dict[str, list[float]] = {name: [] for name in stores}
    try:
        for name, store in stores.items():  # open the conversations, then warm up
            sessions[name] = [
                await store.turn(user_id=user_id, session_id=None, message=MESSAGE)
                for _ in range(SESSIONS)
            ]
            for sid in sessions[name][: mode.warmup_turns]:
                await store.turn(user_id=user_id, session_id=sid, message=MESSAGE)
        rounds = max(1, turns // SESSIONS)
        for _ in range(rounds):
            for name, store in stores.items():
                for sid in sessions[name]:
                    started = time.perf_counter()
                    await store.turn(user_id=user_id, session_id=sid, message=MESSAGE)
                    samples[name].append((time.perf_counter() - started) * 1000)
    finally:
        for store in stores.values():
            await store.engine.dispose()

    medians = {name: statistics.median(v) for name, v in samples.items()}
    plain, sealed = medians["without ENCRYPTION_KEYS"], medians["with ENCRYPTION_KEYS"]
    table = Table(
        f"Encryption at rest: one chat turn in process ({len(samples[next(iter(samples))])} "
        "turns each, ~60-word message)",
        ["setup", "median ms/turn", "mean ms/turn", "vs without"],
    )
    for name, values in samples.items():
        table.add(
            name,
            fmt_ms(medians[name]),
            fmt_ms(statistics.fmean(values)),
            fmt_ratio(ratio(medians[name], plain)),
        )
    report.show(table)
    return {
        "encryption_turn": {
            "turns": len(samples["with ENCRYPTION_KEYS"]),
            "plain_ms": plain,
            "sealed_ms": sealed,
            "extra_ms": sealed - plain,
            "ratio": sealed / plain if plain else None,
        }
    }
