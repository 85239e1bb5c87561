"""Opening a conversation that is a tree against opening a single chain of the same length.

Two conversations of one user, loaded with SQL: a chain of `tree_path` messages, and the
same path where every message also has another version (a sibling leaf), so the tree holds
`tree_path` branches besides the active one and twice the messages. Opening is what
`GET /api/sessions/{id}?limit=1000` does: the session row, then the active path (one
recursive query), each message's versions, the reply being written and the share link,
through the service the route calls (no HTTP).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col

from app.conversations.models import ChatSession
from app.conversations.service import ContextLimits
from app.core.db import create_engine, create_sessionmaker
from app.core.tenancy import owned
from app.history.reading import read_session
from bench.history import _times, _user
from bench.modes import Mode
from bench.pg import BenchServer, connect, settle
from bench.report import Report, Table, fmt_ms, percentile, ratio_goal
from bench.stores import bench_settings

PAGE = 1000  # the largest page GET /api/sessions/{id} gives

_SESSION = """
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at,
                          message_count, head_seq)
VALUES ($1, $2, 'bench tree', 'active', now(), now(), $3, $4)
"""

# The path: seq k (1..n) follows k - 1. With $4, each k also has a sibling n + k (the
# same parent), a leaf: another version of every message of the path.
_MESSAGES = """
INSERT INTO chat_message (session_id, seq, parent_seq, depth, user_id, role, content,
                          metadata, created_at)
SELECT $1, k + v * $3, NULLIF(k - 1, 0), k, $2,
       CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END,
       CASE WHEN v = 0 THEN 'message ' ELSE 'another version of message ' END || k,
       '{}'::jsonb, now() - interval '1 hour' + (k + v * $3) * interval '1 second'
FROM generate_series(1, $3) AS k
CROSS JOIN generate_series(0, CASE WHEN $4 THEN 1 ELSE 0 END) AS v
"""


async def _load(url: str, user_id: uuid.UUID, session_id: str, n: int, branched: bool) -> None:
    total = 2 * n if branched else n
    async with connect(url) as conn:
        await conn.execute(_SESSION, session_id, user_id, total, n)
        await conn.execute(_MESSAGES, session_id, user_id, n, branched)


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    url = await server.migrated_database("tree")
    n = mode.tree_path
    figures: dict[str, Any] = {}
    settings = bench_settings(url)
    engine = create_engine(settings, url)
    sm = create_sessionmaker(engine)
    limits = ContextLimits(settings.context_max_messages, settings.context_max_chars)
    try:
        owner = await _user(url, "bench-tree@example.com")
        chain_id, tree_id = "session_tree_chain", "session_tree_branches"
        await _load(url, owner, chain_id, n, branched=False)
        await _load(url, owner, tree_id, n, branched=True)
        async with connect(url) as conn:
            await settle(conn, "chat_session", "chat_message")

        async def open_conversation(session_id: str) -> int:
            async with sm() as s:
                chat_session = (
                    await s.execute(
                        owned(ChatSession, owner).where(col(ChatSession.id) == session_id)
                    )
                ).scalar_one()
                reading = await read_session(
                    session=s,
                    chat_session=chat_session,
                    after_seq=0,
                    limit=PAGE,
                    now=datetime.now(UTC),
                    limits=limits,
                )
                assert reading.next_after_seq is None and len(reading.messages) == n
                return len(reading.siblings)

        table = Table(
            f"Opening a conversation: a {n:,}-message chain against the same path with "
            f"{n:,} other branches",
            ["conversation", "messages stored", "p50 ms", "p95 ms", "runs"],
        )
        medians: dict[str, float] = {}
        for label, sid, stored in (
            (f"chain of {n:,} messages", chain_id, n),
            (f"{n:,} branches (every message has another version)", tree_id, 2 * n),
        ):
            samples = await _times(lambda sid=sid: open_conversation(sid), mode.history_repeats)
            medians[sid] = percentile(samples, 50)
            table.add(
                label,
                f"{stored:,}",
                fmt_ms(medians[sid]),
                fmt_ms(percentile(samples, 95)),
                len(samples),
            )
            figures[f"tree:{sid}"] = {
                "p50_ms": medians[sid],
                "p95_ms": percentile(samples, 95),
                "runs": len(samples),
            }
        table.notes.append(
            "Both read the whole path in one page (limit 1000): the session row, the path by "
            "one recursive query up from the head, the versions of every message on it, the "
            "turn being written and the share link, as GET /api/sessions/{id} does."
        )
        report.show(table)
        report.goals.append(
            ratio_goal(
                f"opening {n:,} branches / a {n:,}-message chain (median)",
                "≤ 1.5x",
                medians[tree_id],
                medians[chain_id],
                lambda r: r <= 1.5,
            )
        )
    finally:
        await engine.dispose()
        await server.drop(url)
    return figures
