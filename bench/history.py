"""History and export on one big account: list pages, search, PDF and ZIP export.

Each part runs only when the code it measures exists (`app.history.service`,
`app.exports.service`, `app.exports.zip_export`); otherwise it prints a note and skips.
PDF and ZIP run in a subprocess (`bench.export_probe`) so their peak memory is their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx

from app.auth.repository import BEARER
from app.auth.tokens import new_sign_in, sign_in_limits, sign_in_token
from app.core.clock import Clock
from app.core.runtime import PROJECT_ROOT
from app.main import create_app
from bench.data import TextSource
from bench.modes import Mode
from bench.pg import BenchServer, connect, indexes_deferred, settle
from bench.report import Goal, Report, Table, fmt_ms, percentile
from bench.stores import bench_settings

LOAD_CONNECTIONS = 2  # the machine's cores
_USER_TRIGGERS = """
SELECT count(*) FROM pg_trigger
WHERE tgrelid IN ('chat_message'::regclass, 'chat_session'::regclass) AND NOT tgisinternal
"""
TIME_BUDGET_S = 5.0  # per timed operation
POOL_TEXTS = 4000  # distinct message texts the bulk load cycles through
COMMON_WORD_RANK = 10  # search for the 10th most frequent word of the vocabulary
MISSING_WORD = "zzyzxnowhere"
MISSING_CJK = "番茄炒蛋"
MISSING_EMOJI = "🦩"
EMOJI_SEARCH_GOAL_MS = 100.0  # p95 of the search for an emoji no message holds
# Over HTTP, next to Open WebUI 0.12.4 measured on this machine (same page size, one
# request each): its first page of 60 chats, and opening a short chat.
LIST_PAGE = 60
SHORT_MESSAGES = 6
OPEN_WEBUI_LIST_MS = 12.3
OPEN_WEBUI_OPEN_MS = 13.6

_SESSIONS = """
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at,
                          archived_at, message_count, head_seq)
SELECT $2 || lpad(g::text, 8, '0') || '_' || md5($2 || g::text),
       $1,
       left(t.content, 60),
       CASE WHEN g % 5 = 0 THEN 'archived' ELSE 'active' END,
       now() - interval '30 days' + g * interval '1 minute',
       now() - interval '20 days' + g * interval '1 minute',
       CASE WHEN g % 5 = 0 THEN now() - interval '1 day' END,
       $4,
       NULLIF($4, 0)
FROM generate_series(1, $3) AS g
JOIN bench_text AS t ON t.i = g % ($5 / 2)
"""

_MESSAGES = """
INSERT INTO chat_message (session_id, seq, parent_seq, depth, user_id, role, content,
                          metadata, created_at)
SELECT $2 || lpad(g::text, 8, '0') || '_' || md5($2 || g::text),
       k,
       NULLIF(k - 1, 0),
       k,
       $1,
       CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END,
       t.content,
       '{}'::jsonb,
       now() - interval '30 days' + g * interval '1 minute' + k * interval '1 second'
FROM generate_series(1, $3) AS g
CROSS JOIN generate_series(1, $4) AS k
JOIN bench_text AS t ON t.i = ((k + 1) % 2) * ($5 / 2) + (g * 7919 + k * 31) % ($5 / 2)
"""


def _available(module: str, *names: str) -> str | None:
    """None if `module` has all `names`; otherwise why not."""
    try:
        mod = importlib.import_module(module)
    except Exception as exc:
        return f"{module} not importable ({exc.__class__.__name__}: {exc})"
    missing = [n for n in names if not hasattr(mod, n)]
    return f"{module} has no {', '.join(missing)}" if missing else None


async def _load_account(
    url: str,
    user_id: uuid.UUID,
    prefix: str,
    sessions: int,
    per_session: int,
    text: TextSource,
    pool: int,
    defer_indexes: bool = False,
) -> float:
    started = time.perf_counter()
    async with connect(url) as conn:
        exists = await conn.fetchval("SELECT to_regclass('bench_text') IS NOT NULL")
        if not exists:
            await conn.execute("CREATE UNLOGGED TABLE bench_text (i int PRIMARY KEY, content text)")
            half = pool // 2
            rows = [(i, text.message("user").content) for i in range(half)]
            rows += [(half + i, text.message("assistant").content) for i in range(half)]
            await conn.copy_records_to_table("bench_text", records=rows, columns=["i", "content"])
        async with contextlib.AsyncExitStack() as stack:
            if defer_indexes:
                await stack.enter_async_context(
                    indexes_deferred(conn, "chat_session", "chat_message")
                )
            await conn.execute(_SESSIONS, user_id, prefix, sessions, per_session, pool)
            # In slices of ~200k rows, on LOAD_CONNECTIONS connections at once.
            step = max(1, 200_000 // max(1, per_session))
            slices = [
                (first, min(sessions, first + step - 1)) for first in range(1, sessions + 1, step)
            ]
            lanes = [slices[i::LOAD_CONNECTIONS] for i in range(LOAD_CONNECTIONS)]
            await asyncio.gather(
                *(_load_messages(url, lane, user_id, prefix, per_session, pool) for lane in lanes)
            )
    return time.perf_counter() - started


async def _load_messages(
    url: str,
    lane: list[tuple[int, int]],
    user_id: uuid.UUID,
    prefix: str,
    per_session: int,
    pool: int,
) -> None:
    if not lane:
        return
    async with connect(url) as conn:
        # The rows are consistent by construction; skipping the per-row foreign-key checks
        # (replica mode) needs a superuser, so where that is refused they simply run.
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            if not await conn.fetchval(_USER_TRIGGERS):
                await conn.execute("SET session_replication_role = replica")
        for first, last in lane:
            await conn.execute(
                _MESSAGES.replace(
                    "generate_series(1, $3) AS g", f"generate_series({first}, $3) AS g"
                ),
                user_id,
                prefix,
                last,
                per_session,
                pool,
            )


async def _user(url: str, email: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    async with connect(url) as conn:
        await conn.execute(
            "INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, "
            "is_verified) VALUES ($1, $2, 'not-a-password-hash', true, false, true)",
            user_id,
            email,
        )
    return user_id


async def _times(call: Callable[[], Awaitable[Any]], repeats: int) -> list[float]:
    """Up to `repeats` timed calls after a warm one; at least 3, at most ~TIME_BUDGET_S."""
    await call()
    samples: list[float] = []
    started = time.perf_counter()
    for _ in range(repeats):
        if len(samples) >= 3 and time.perf_counter() - started > TIME_BUDGET_S:
            break
        t0 = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples


async def _times_and_cpu(
    call: Callable[[], Awaitable[Any]], repeats: int
) -> tuple[list[float], list[float]]:
    """As `_times`, with this process's CPU time of each call beside its wall time (app
    and client share the process; the CPU figure moves less with the machine's load)."""
    await call()
    wall: list[float] = []
    cpu: list[float] = []
    started = time.perf_counter()
    for _ in range(repeats):
        if len(wall) >= 3 and time.perf_counter() - started > TIME_BUDGET_S:
            break
        c0, t0 = time.process_time_ns(), time.perf_counter_ns()
        await call()
        wall.append((time.perf_counter_ns() - t0) / 1e6)
        cpu.append((time.process_time_ns() - c0) / 1e6)
    return wall, cpu


def _probe(
    kind: str, url: str, user_id: uuid.UUID, session_id: str | None = None
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.export_probe", kind, "--url", url, "--user", str(user_id)]
    if session_id:
        cmd += ["--session", session_id]
    out = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"export probe {kind} failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(line)
    return result


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    missing_history = _available("app.history.service", "list_sessions")
    missing_pdf = _available("app.exports.downloads", "conversation_pdf")
    missing_zip = _available("app.exports.zip_export", "archive")
    if missing_history and missing_pdf and missing_zip:
        report.note(
            f"history/export section skipped: {missing_history}; {missing_pdf}; {missing_zip}"
        )
        return {}

    url = await server.migrated_database("history")
    text = TextSource(seed=5)
    figures: dict[str, Any] = {}
    n_sessions, per_session = mode.history_sessions, mode.history_messages_per_session
    pool = min(POOL_TEXTS, max(100, n_sessions * per_session // 5))
    table = Table(
        f"History and export: one user with {n_sessions:,} conversations and "
        f"{n_sessions * per_session:,} messages",
        ["operation", "p50 ms", "p95 ms", "detail"],
    )
    try:
        owner = await _user(url, "bench-history@example.com")
        load_s = await _load_account(url, owner, "session_18", n_sessions, per_session, text, pool)
        async with connect(url) as conn:
            await settle(conn, "chat_session", "chat_message")
        print(
            f"  history: {n_sessions * per_session:,} messages loaded in {load_s:.1f}s", flush=True
        )
        figures["history_load_seconds"] = load_s

        if missing_history:
            report.note(f"history pages and search skipped: {missing_history}")
        else:
            await _history_rows(url, owner, mode, table, figures)
            report.goals.append(_emoji_goal(figures, n_sessions * per_session))
            await _load_account(url, owner, "session_21", 1, SHORT_MESSAGES, text, pool)
            await _http_rows(url, owner, mode, table, figures, report)

        if missing_pdf:
            report.note(f"PDF export skipped: {missing_pdf}")
        else:
            pdf_user = await _user(url, "bench-pdf@example.com")
            await _load_account(url, pdf_user, "session_19", 1, mode.pdf_messages, text, pool)
            pdf_session = loaded_session_id("session_19", 1)
            result = await asyncio.to_thread(_probe, "pdf", url, pdf_user, pdf_session)
            table.add(
                f"PDF of one {mode.pdf_messages:,}-message conversation",
                fmt_ms(result["seconds"] * 1000),
                "—",
                _export_detail(result, "file"),
            )
            figures["pdf"] = result

        if missing_zip:
            report.note(f"ZIP export skipped: {missing_zip}")
        else:
            zip_user = await _user(url, "bench-zip@example.com")
            await _load_account(
                url,
                zip_user,
                "session_20",
                mode.zip_conversations,
                mode.zip_messages_per_conversation,
                text,
                pool,
            )
            result = await asyncio.to_thread(_probe, "zip", url, zip_user)
            table.add(
                f"ZIP of {mode.zip_conversations:,} conversations "
                f"({mode.zip_messages_per_conversation} messages each, JSON + one PDF each)",
                fmt_ms(result["seconds"] * 1000),
                "—",
                _export_detail(result, "archive"),
            )
            figures["zip"] = result
    finally:
        await server.drop(url)

    table.notes.append(
        "The rows over HTTP run the whole app in this process (httpx's ASGI transport, a "
        "bearer sign-in, the middleware, the rate limiter, the request transaction); their "
        "CPU is this process's (app and client) per request, median."
    )
    table.notes.append(
        f"Bulk-loaded with generate_series in {load_s:.1f} s from a pool of {pool:,} "
        "generated texts; its indexes (full-text ones included) were rebuilt after the load. "
        "The other timings call the services directly (no HTTP); PDF and ZIP run in a "
        "subprocess of their own, whose peak RSS is reported next to its RSS before the "
        "export began."
    )
    report.show(table)
    return figures


def _emoji_goal(figures: dict[str, Any], messages: int) -> Goal:
    """Searching for an emoji no message holds is a lookup, not a read of every message."""
    row = figures.get("history:search, emoji in no message")
    p95 = None if row is None else row["p95_ms"]
    return Goal(
        f"search for an emoji in no message, {messages:,} messages: p95",
        f"< {EMOJI_SEARCH_GOAL_MS:.0f} ms",
        p95,
        None if p95 is None else p95 < EMOJI_SEARCH_GOAL_MS,
        "" if row is None else f"p50 {fmt_ms(row['p50_ms'])} ms",
        unit="ms",
    )


def _export_detail(result: dict[str, Any], what: str) -> str:
    return (
        f"{result['bytes'] / 2**20:.1f} MiB {what}; peak RSS {result['peak_rss_mib']:.0f} MiB "
        f"({result['base_rss_mib']:.0f} before)"
    )


def loaded_session_id(prefix: str, number: int) -> str:
    """The id `_load_account` gives its `number`th session (same formula as the SQL)."""
    digest = hashlib.md5(f"{prefix}{number}".encode(), usedforsecurity=False).hexdigest()
    return f"{prefix}{number:08d}_{digest}"


async def _history_rows(
    url: str, owner: uuid.UUID, mode: Mode, table: Table, figures: dict[str, Any]
) -> None:
    from app.core.db import create_engine, create_sessionmaker
    from app.history.service import list_sessions

    engine = create_engine(bench_settings(url), url)
    sm = create_sessionmaker(engine)
    try:

        async def page(cursor: str | None = None, q: str | None = None) -> Any:
            async with sm() as s:
                return await list_sessions(session=s, user_id=owner, cursor=cursor, q=q, limit=20)

        # A deep page: walk the cursor ~90% of the way down.
        n_pages = mode.history_sessions // 20
        target = max(1, int(n_pages * 0.9))
        cursor = None
        walk_started = time.perf_counter()
        for _ in range(target):
            result = await page(cursor)
            cursor = result.next_cursor
            if cursor is None:
                break
        walk_s = time.perf_counter() - walk_started
        common = await _common_word(url)
        rows = [
            ("history, first page (20)", lambda: page()),
            (f"history, page {target + 1:,} of {n_pages:,} via cursor", lambda: page(cursor)),
            (f"search, common word ('{common}')", lambda: page(q=common)),
            ("search, word in no message", lambda: page(q=MISSING_WORD)),
            (f"search, prefix ('{common[:3]}')", lambda: page(q=common[:3])),
            # The bench text is ASCII: these measure the substring path finding nothing.
            ("search, Chinese term in no message", lambda: page(q=MISSING_CJK)),
            ("search, emoji in no message", lambda: page(q=MISSING_EMOJI)),
        ]
        for label, call in rows:
            samples = await _times(call, mode.history_repeats)
            hits = len((await call()).items)
            table.add(
                label,
                fmt_ms(percentile(samples, 50)),
                fmt_ms(percentile(samples, 95)),
                f"{hits} rows; {len(samples)} runs",
            )
            figures[f"history:{label}"] = {
                "p50_ms": percentile(samples, 50),
                "p95_ms": percentile(samples, 95),
                "rows": hits,
            }
        figures["history_cursor_walk_seconds"] = walk_s
    finally:
        await engine.dispose()


async def _common_word(url: str) -> str:
    async with connect(url) as conn:
        word = await conn.fetchval(
            """
            SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', content) FROM bench_text')
            ORDER BY ndoc DESC, word OFFSET $1 LIMIT 1
            """,
            COMMON_WORD_RANK,
        )
    return str(word)


async def _http_rows(
    url: str,
    owner: uuid.UUID,
    mode: Mode,
    table: Table,
    figures: dict[str, Any],
    report: Report,
) -> None:
    """The history page's two reads over HTTP, through the whole app in process (middleware,
    sign-in, rate limit, the request transaction, JSON): the first page of the list as the
    page asks for it, and opening a short conversation in one request. Bearer sign-in."""
    settings = bench_settings(url).model_copy(
        update={
            "assistant_backend": "builtin",
            "job_worker_enabled": False,
            "scheduled_jobs_enabled": False,
            # The limiter runs (its cost is counted) without refusing the bench's requests.
            "rate_limit_default": "1000000/minute",
        }
    )
    app = create_app(settings, migrate=False, run_sweeper=False)
    async with app.router.lifespan_context(app):
        lifetime, _ = sign_in_limits(settings, BEARER)
        async with app.state.sessionmaker() as s:
            row = new_sign_in(
                user_id=owner,
                kind=BEARER,
                user_agent="bench",
                ip="127.0.0.1",
                now=Clock().now(),
                lifetime_seconds=lifetime,
            )
            s.add(row)
            await s.commit()
        token = sign_in_token(
            secret=settings.resolved_secret_key(),
            lifetime_seconds=lifetime,
            user_id=owner,
            sign_in_id=row.id,
        )
        short = loaded_session_id("session_21", 1)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bench.local",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:

            async def get(path: str) -> httpx.Response:
                r = await client.get(path)
                r.raise_for_status()
                return r

            # As the web page asks (compact items); the full items as API clients get them.
            list_path = f"/api/sessions?status=all&limit={LIST_PAGE}&compact=true"
            full_path = f"/api/sessions?status=all&limit={LIST_PAGE}"
            open_path = f"/api/sessions/{short}?drafts=true"
            first_page = await get(list_path)
            full_page = await get(full_path)
            opened = await get(open_path)
            assert len(first_page.json()["items"]) == LIST_PAGE
            assert len(opened.json()["messages"]) == SHORT_MESSAGES

            async def open_in_two() -> None:
                await get(f"/api/sessions/{short}")
                await get(f"/api/sessions/{short}/drafts")

            repeats = max(30, mode.history_repeats * 2)
            rows = [
                (
                    "http_list",
                    f"GET /api/sessions, first page ({LIST_PAGE}) as the page reads it "
                    "(compact), over HTTP in process",
                    lambda: get(list_path),
                    f"{len(first_page.content) / 1024:.1f} KiB",
                ),
                (
                    "http_list_full",
                    f"the same page with full items ({LIST_PAGE})",
                    lambda: get(full_path),
                    f"{len(full_page.content) / 1024:.1f} KiB",
                ),
                (
                    "http_open",
                    f"GET /api/sessions/{{id}}?drafts=true, {SHORT_MESSAGES} messages, "
                    "over HTTP in process",
                    lambda: get(open_path),
                    f"{len(opened.content) / 1024:.1f} KiB",
                ),
                (
                    "http_open_two",
                    "the same in two requests (the session, then /drafts)",
                    open_in_two,
                    "2 requests",
                ),
            ]
            medians: dict[str, float] = {}
            for key, label, call, detail in rows:
                samples, cpu = await _times_and_cpu(call, repeats)
                medians[key] = percentile(samples, 50)
                table.add(
                    label,
                    fmt_ms(medians[key]),
                    fmt_ms(percentile(samples, 95)),
                    f"{detail}; CPU {fmt_ms(percentile(cpu, 50))} ms; {len(samples)} runs",
                )
                figures[f"history:{key}"] = {
                    "p50_ms": medians[key],
                    "p95_ms": percentile(samples, 95),
                    "cpu_p50_ms": percentile(cpu, 50),
                    "runs": len(samples),
                }
            figures["history:http_list"]["bytes"] = len(first_page.content)
            figures["history:http_list_full"]["bytes"] = len(full_page.content)
            figures["history:http_open"]["bytes"] = len(opened.content)
    report.goals.append(
        Goal(
            f"history list, first page of {LIST_PAGE} over HTTP (median)",
            f"≤ {OPEN_WEBUI_LIST_MS} ms (Open WebUI)",
            medians["http_list"],
            medians["http_list"] <= OPEN_WEBUI_LIST_MS,
            unit="ms",
        )
    )
    report.goals.append(
        Goal(
            f"open a short conversation ({SHORT_MESSAGES} messages) in one request (median)",
            f"≤ {OPEN_WEBUI_OPEN_MS} ms (Open WebUI)",
            medians["http_open"],
            medians["http_open"] <= OPEN_WEBUI_OPEN_MS,
            unit="ms",
        )
    )
