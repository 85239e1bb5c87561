"""With a real (slow) model: one Chatkeep process, a streaming model that takes seconds.

The model is `tests/fakemodel.py` in its own process: an OpenAI-compatible server that
streams its reply word by word over `real_model_seconds`, and says when it sent each
reply's first token (`GET /stats`, keyed by the user message). Chatkeep runs as
`uvicorn app.asgi:app` (one process) with ASSISTANT_BACKEND=openai pointing at it.

Three questions:

- *Concurrency*: many signed-in users send one message each at the same moment. Does
  every one get its reply in about the model's time, or does something (the connection
  pool, the in-flight cap) make them queue or fail? PostgreSQL's `pg_stat_activity` is
  sampled meanwhile for the app's connections.
- *Latency*: how long after the model's first token does the client see its first
  `delta` event? Both clocks are this machine's.
- *Fan-out*: a thousand open `GET /api/events` streams of one user (a thousand devices),
  then one message: how soon does every stream hear of it, and what does a stream cost
  in server memory?

Users are made from one registration: the app hashes the password once, the bench copies
that hash into more `app_user` rows, and signs each in with a `sign_in` row and the token
the app would issue for it (login would cost an argon2 verify each). Only chat requests are timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil  # type: ignore[import-untyped]

from app.auth.tokens import sign_in_token
from app.core.runtime import PROJECT_ROOT
from bench.http_load import PASSWORD, _free_port
from bench.modes import Mode
from bench.pg import BenchServer, plain_dsn
from bench.report import Goal, Report, Table, fmt_ms, fmt_ratio, percentile

SECRET_KEY = "bench-real-model-" + "k" * 40
TOKEN_TTL_SECONDS = 3600
MODEL_WORDS = 30
SAMPLE_SECONDS = 0.025
WALL_GOAL = 1.2
# Process CPU (user + system) of the one Chatkeep process per streamed reply.
CPU_GOAL_MS = 2.0
FIRST_DELTA_GOAL_MS = 20.0
FANOUT_GOAL_MS = 1000.0
OPEN_STREAMS_AT_ONCE = 50
HOST = "127.0.0.1"


# -- processes ---------------------------------------------------------------------------


def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by the processes we start)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@contextlib.contextmanager
def _process(
    name: str, cmd: list[str], env: dict[str, str], health_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_nofile_limit,
        )
        try:
            _wait_for(proc, name, health_url, log)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for(proc: subprocess.Popen[bytes], name: str, url: str, log: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{name} exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer {url} in 60 s")
        time.sleep(0.1)


def _clean_env() -> dict[str, str]:
    """The bench's environment minus anything that would change the app's settings."""
    prefixes = ("RATE_LIMIT", "TURN_", "LLM_", "DB_", "MAX_TURNS", "SSE_", "EVENTS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@contextlib.contextmanager
def fake_model(seconds: float) -> Iterator[str]:
    """`python -m tests.fakemodel` on a free port; yields its base URL."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "tests.fakemodel", "--port", str(port),
        "--seconds", str(seconds), "--words", str(MODEL_WORDS),
    ]  # fmt: skip
    base = f"http://{HOST}:{port}"
    with _process("the fake model", cmd, _clean_env(), f"{base}/stats"):
        yield base


@contextlib.contextmanager
def chatkeep(
    database_url: str, model_base: str, data_dir: Path, model: str | None = None
) -> Iterator[tuple[str, int]]:
    """One `uvicorn app.asgi:app` process on the real model; yields (base URL, pid)."""
    port = _free_port()
    env = {
        **_clean_env(),
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",
        "ASSISTANT_BACKEND": "openai",
        "LLM_BASE_URL": f"{model_base}/v1",
        "LLM_API_KEY": "bench",
        "LLM_INTENTS": "rules",
        "LLM_MAX_RETRIES": "0",  # a failure shows as one, not as a slow success
        "ACCESS_TOKEN_TTL_SECONDS": str(TOKEN_TTL_SECONDS),
        "PYTHONDONTWRITEBYTECODE": "1",
        **({"LLM_MODEL": model} if model else {}),
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "app.asgi:app",
        "--host", HOST, "--port", str(port), "--backlog", "2048",
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    base = f"http://{HOST}:{port}"
    with _process("Chatkeep", cmd, env, f"{base}/healthz") as proc:
        yield base, proc.pid


# -- users -------------------------------------------------------------------------------


@dataclass
class Users:
    ids: list[uuid.UUID]
    dsn: str

    async def token(self, i: int) -> str:
        """A fresh sign-in (its own `sign_in` row) for user i, as login would issue it."""
        return (await self.tokens(1, user=i))[0]

    async def tokens(self, count: int, *, user: int | None = None) -> list[str]:
        now = datetime.now(UTC)
        rows = [
            (
                uuid.uuid4(),
                self.ids[i if user is None else user],
                "bearer",
                "bench",
                "127.0.0.1",
                now,
                now,
                now + timedelta(seconds=TOKEN_TTL_SECONDS),
            )
            for i in range(count)
        ]
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.copy_records_to_table(
                "sign_in",
                records=rows,
                columns=[
                    "id",
                    "user_id",
                    "kind",
                    "device",
                    "ip",
                    "created_at",
                    "last_used_at",
                    "expires_at",
                ],
            )
        finally:
            await conn.close()
        return [
            sign_in_token(
                secret=SECRET_KEY,
                lifetime_seconds=TOKEN_TTL_SECONDS,
                user_id=row[1],
                sign_in_id=row[0],
            )
            for row in rows
        ]


async def make_users(base: str, database_url: str, count: int) -> Users:
    """One user registered and signed in through the API; `count - 1` more in SQL with the
    same password hash. Tokens come from the app's own strategy and key."""
    email = f"bench-real-{secrets.token_hex(4)}@example.com"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        r = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        first = uuid.UUID(r.json()["id"])
        r = await client.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
        r.raise_for_status()
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        hashed = await conn.fetchval("SELECT hashed_password FROM app_user WHERE id = $1", first)
        ids = [first, *(uuid.uuid4() for _ in range(count - 1))]
        await conn.copy_records_to_table(
            "app_user",
            records=[
                (uid, f"bench-real-{uid.hex[:12]}@example.com", hashed, True, False, False)
                for uid in ids[1:]
            ],
            columns=["id", "email", "hashed_password", "is_active", "is_superuser", "is_verified"],
        )
        await conn.execute("ANALYZE app_user")
    finally:
        await conn.close()
    return Users(ids=ids, dsn=plain_dsn(database_url))


# -- sampling ----------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # time.time()
    active: int
    idle_in_transaction: int
    total: int

    @property
    def in_use(self) -> int:
        return self.active + self.idle_in_transaction


class ConnectionSampler:
    """The app's connections in pg_stat_activity (application_name 'chatkeep'), every
    SAMPLE_SECONDS, from a thread with its own loop so a busy bench loop cannot delay it."""

    QUERY = """
        SELECT count(*) FILTER (WHERE state = 'active'),
               count(*) FILTER (WHERE state LIKE 'idle in transaction%'),
               count(*)
        FROM pg_stat_activity
        WHERE application_name = 'chatkeep' AND datname = current_database()
    """

    def __init__(self, database_url: str) -> None:
        self.dsn = plain_dsn(database_url)
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._ready = threading.Event()

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "bench"})
        try:
            self._ready.set()
            while not self._stop.is_set():
                row = await conn.fetchrow(self.QUERY)
                self.samples.append(Sample(time.time(), row[0], row[1], row[2]))
                await asyncio.sleep(SAMPLE_SECONDS)
        finally:
            self._ready.set()
            await conn.close()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def peak(self, start: float | None = None, end: float | None = None) -> Sample | None:
        inside = [
            s
            for s in self.samples
            if (start is None or s.at >= start) and (end is None or s.at <= end)
        ]
        return max(inside, key=lambda s: (s.in_use, s.total)) if inside else None

    def peak_total(self) -> int:
        return max((s.total for s in self.samples), default=0)


# -- a light SSE client ------------------------------------------------------------------


class SseConnection:
    """HTTP/1.1 on a plain asyncio socket, kept alive between requests: light enough for a
    thousand at once in the bench process. (httpx's pool costs the client more CPU than
    the server spends on a turn once hundreds of connections are open, and the bench
    shares the machine's two cores with the server it measures.)"""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.port = port
        self.status = 0
        self.chunked = False
        self.length: int | None = None

    @classmethod
    async def connect(cls, port: int) -> SseConnection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer, port)

    @classmethod
    async def open(cls, port: int, path: str, token: str) -> SseConnection:
        """A connection with a GET event stream started on it."""
        conn = await cls.connect(port)
        await conn.send("GET", path, token=token, accept="text/event-stream")
        return conn

    async def send(
        self, method: str, path: str, *, token: str, body: bytes = b"", accept: str = "*/*"
    ) -> None:
        """Sends one request and reads the status line and headers of its answer."""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: {accept}\r\n"
        )
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status = await self.reader.readline()
        self.status = int(status.split()[1])
        self.chunked, self.length = False, None
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            lower = line.lower()
            if lower.startswith(b"transfer-encoding:") and b"chunked" in lower:
                self.chunked = True
            elif lower.startswith(b"content-length:"):
                self.length = int(line.split(b":", 1)[1])

    async def _body(self) -> bytes:
        """The next piece of the body; b"" at its end."""
        if not self.chunked:
            if self.length is not None:
                data = await self.reader.readexactly(self.length) if self.length else b""
                self.length = 0
                return data
            return await self.reader.read(65536)
        size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            await self.reader.readline()  # the empty trailer: the connection is reusable
            return b""
        data = await self.reader.readexactly(size)
        await self.reader.readexactly(2)
        return data

    async def read_body(self) -> bytes:
        parts = []
        while data := await self._body():
            parts.append(data)
        return b"".join(parts)

    async def events(self) -> AsyncIterator[tuple[str, str]]:
        """(event, data) of each frame; heartbeats are skipped."""
        buffer = b""
        while True:
            data = await self._body()
            if not data:
                return
            buffer += data
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                event, lines = "message", []
                for line in frame.decode().split("\n"):
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        lines.append(line[5:].lstrip())
                if lines:
                    yield event, "\n".join(lines)

    def close(self) -> None:
        self.writer.close()


# -- (a) and (b): chat turns -------------------------------------------------------------


@dataclass
class Burst:
    name: str
    path: str  # "JSON" | "streamed"
    turns: int
    concurrency: int
    wall_s: float
    statuses: Counter[str]
    first_delta_ms: list[float]
    peak_in_use: int
    peak_in_use_thinking: int | None
    peak_open: int
    thinking_window_s: float | None
    model_requests: int
    model_peak_in_flight: int
    server_cpu_s: float | None = None  # the Chatkeep process's CPU time over the row
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_ms_per_reply(self) -> float | None:
        if self.server_cpu_s is None or not self.answered:
            return None
        return self.server_cpu_s * 1000 / self.answered

    @property
    def answered(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def busy(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.startswith("503"))

    @property
    def other_errors(self) -> int:
        return self.turns - self.answered - self.busy


def _chat_body(text: str) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": text}]}).encode()


def _outcome(status: int, body: bytes) -> str:
    """ "200", or the status and the problem's code ("503 database_unavailable")."""
    if status == 200:
        return "200"
    try:
        code = json.loads(body).get("code", "")
    except ValueError:
        code = ""
    return f"{status} {code}".strip()


async def _one_json(conn: SseConnection, token: str, text: str) -> str:
    try:
        await conn.send("POST", "/api/chat", token=token, body=_chat_body(text))
        body = await conn.read_body()
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return f"client {type(exc).__name__} {exc}".strip()
    if conn.status == 200 and not json.loads(body).get("reply"):
        return "200 without a reply"
    return _outcome(conn.status, body)


async def _one_streamed(
    conn: SseConnection, token: str, text: str, first_delta: dict[str, float]
) -> str:
    outcome = "stream ended early"
    try:
        await conn.send(
            "POST", "/api/chat", token=token, body=_chat_body(text), accept="text/event-stream"
        )
        if conn.status != 200:
            return _outcome(conn.status, await conn.read_body())
        # Read to the end of the response, so the connection can carry the next one.
        async for event, data in conn.events():
            if event == "delta" and text not in first_delta:
                first_delta[text] = time.time()
            elif event == "done":
                outcome = "200" if json.loads(data)["reply"] else "200 without a reply"
            elif event == "error":
                outcome = f"error event {json.loads(data).get('code', '?')}"
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        return f"client {type(exc).__name__} {exc}".strip()
    return outcome


async def _model_stats(model_base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        stats: dict[str, Any] = (await client.get(f"{model_base}/stats")).json()
        return stats


async def burst(
    *,
    name: str,
    base: str,
    model_base: str,
    database_url: str,
    tokens: list[str],
    turns: int,
    concurrency: int,
    streamed: bool,
    model_seconds: float,
    pid: int | None = None,
) -> Burst:
    """`turns` chat turns, `concurrency` at a time (all at once when equal), each by its
    own signed-in user, timed from the first request sent to the last answer."""
    tag = secrets.token_hex(3)
    texts = [f"Tell me something, please ({tag} #{i})" for i in range(turns)]
    first_delta: dict[str, float] = {}
    before = await _model_stats(model_base)
    port = int(base.rsplit(":", 1)[1])
    # Open the connections first, so the timed part is the chat requests alone.
    idle: asyncio.Queue[SseConnection] = asyncio.Queue()
    opened = list(await asyncio.gather(*(SseConnection.connect(port) for _ in range(concurrency))))
    for conn in opened:
        idle.put_nowait(conn)
    failed_at: list[float] = []
    failures: list[dict[str, Any]] = []

    async def one(i: int) -> str:
        conn = await idle.get()
        token = tokens[i % len(tokens)]
        began = time.perf_counter()
        if streamed:
            outcome = await _one_streamed(conn, token, texts[i], first_delta)
        else:
            outcome = await _one_json(conn, token, texts[i])
        if outcome.startswith("client") or conn.status != 200:
            # A broken connection, or an answer we did not read to its end: a fresh one.
            conn.close()
            conn = await SseConnection.connect(port)
            opened.append(conn)
        idle.put_nowait(conn)
        if outcome != "200":
            now = time.perf_counter()
            failed_at.append(round(now - started, 2))
            failures.append(
                {
                    "turn": i,
                    "outcome": outcome,
                    "after_start_s": round(now - started, 3),
                    "turn_took_s": round(now - began, 3),
                }
            )
        return outcome

    server = psutil.Process(pid) if pid is not None else None
    try:
        with ConnectionSampler(database_url) as sampler:
            cpu_before = _process_cpu_s(server)
            started = time.perf_counter()
            outcomes = await asyncio.gather(*(one(i) for i in range(turns)))
            wall = time.perf_counter() - started
            await asyncio.sleep(0.1)  # the last closes' connections back in the pool
            cpu_after = _process_cpu_s(server)
    finally:
        for conn in opened:
            conn.close()
    after = await _model_stats(model_base)
    first_token: dict[str, float] = after["firstTokenAt"]
    latencies = [
        (first_delta[t] - first_token[t]) * 1000
        for t in texts
        if t in first_delta and t in first_token
    ]
    # While the model thinks: from the last turn's first token (every turn is open) to the
    # first turn's last token (none has closed yet). Empty when opening took longer.
    mine = [first_token[t] for t in texts if t in first_token]
    thinking: tuple[float, float] | None = None
    if mine and concurrency == turns:
        start, end = max(mine), min(mine) + model_seconds * (MODEL_WORDS - 1) / MODEL_WORDS
        thinking = (start, end) if end > start else None
    peak = sampler.peak()
    peak_thinking = sampler.peak(*thinking) if thinking else None
    result = Burst(
        name=name,
        path="streamed" if streamed else "JSON",
        turns=turns,
        concurrency=concurrency,
        wall_s=wall,
        statuses=Counter(outcomes),
        first_delta_ms=latencies,
        peak_in_use=peak.in_use if peak else 0,
        peak_in_use_thinking=peak_thinking.in_use if peak_thinking else None,
        peak_open=sampler.peak_total(),
        thinking_window_s=(thinking[1] - thinking[0]) if thinking else None,
        model_requests=after["requests"] - before["requests"],
        model_peak_in_flight=after["peakInFlight"],
        server_cpu_s=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        raw={
            "samples": len(sampler.samples),
            "statuses": dict(Counter(outcomes)),
            "failed_at_s": sorted(failed_at),
            "failed_turns": sorted(failures, key=lambda f: f["turn"]),
            "in_use_series": [
                [round(s.at - sampler.samples[0].at, 3), s.active, s.idle_in_transaction, s.total]
                for s in sampler.samples
            ]
            if sampler.samples
            else [],
        },
    )
    lat = (
        f"  first token → first delta p50 {fmt_ms(percentile(latencies, 50))} ms "
        f"p90 {fmt_ms(percentile(latencies, 90))} ms"
        if latencies
        else ""
    )
    print(
        f"  real model: {name:<28} {result.answered}/{turns} answered, "
        f"{result.busy} x 503, {result.other_errors} other; wall {wall:.2f} s "
        f"({wall / model_seconds:.2f}x the model); DB connections in use peak "
        f"{result.peak_in_use} (while the model thinks "
        f"{'—' if result.peak_in_use_thinking is None else result.peak_in_use_thinking}), "
        f"open peak {result.peak_open}{lat}; server CPU "
        f"{fmt_ms(result.cpu_ms_per_reply)} ms per reply",
        flush=True,
    )
    if result.answered < turns:
        print(f"    outcomes: {dict(result.statuses)}", flush=True)
        print(f"    failures at (s after the start): {_spread(sorted(failed_at))}", flush=True)
        for f in result.raw["failed_turns"]:
            print(
                f"    failed turn #{f['turn']}: {f['outcome']}, {f['turn_took_s']:.3f} s after "
                f"it was sent ({f['after_start_s']:.3f} s into the row)",
                flush=True,
            )
    return result


def _process_cpu_s(proc: psutil.Process | None) -> float | None:
    """User plus system CPU seconds of one process (its threads included)."""
    if proc is None:
        return None
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return None
    return float(t.user + t.system)


def cpu_goal(bursts: list[Burst]) -> Goal:
    """Server CPU per streamed reply, over every streamed row (the latency row included)."""
    rows = [b for b in bursts if b.path == "streamed" and b.server_cpu_s is not None]
    replies = sum(b.answered for b in rows)
    cpu_s = sum(b.server_cpu_s or 0.0 for b in rows)
    value = cpu_s * 1000 / replies if replies else None
    return Goal(
        "real model: server CPU per streamed reply",
        f"≤ {CPU_GOAL_MS:g} ms",
        value,
        None if value is None else value <= CPU_GOAL_MS,
        f"{cpu_s:.2f} s of process CPU for {replies} replies" if replies else "",
        unit="ms",
    )


def failures_goal(bursts: list[Burst]) -> Goal:
    """Any failed turn in any row is a goal not met: a row's other figures (its latency,
    its wall time) mean little when some of its turns did not happen."""
    failed = sum(b.turns - b.answered for b in bursts)
    rows = [f"{b.name}: {b.turns - b.answered}" for b in bursts if b.answered < b.turns]
    return Goal(
        "real model: failed turns, every row (503s included)",
        "0",
        float(failed),
        failed == 0 if bursts else None,
        "; ".join(rows) if rows else f"{sum(b.turns for b in bursts)} turns, none failed",
        unit="turns",
    )


def _spread(times: list[float]) -> str:
    if not times:
        return "—"
    return f"first {times[0]:.2f}, median {percentile(times, 50):.2f}, last {times[-1]:.2f}"


# -- (c) fan-out -------------------------------------------------------------------------


@dataclass
class FanOut:
    streams: int
    opened: int
    open_seconds: float
    rss_before_mib: float
    rss_after_mib: float
    received: int
    after_post_ms: list[float]
    turn_event_ms: float | None  # the chat request's own `turn` event, same reference

    @property
    def kib_per_stream(self) -> float | None:
        if not self.opened:
            return None
        return (self.rss_after_mib - self.rss_before_mib) * 1024 / self.opened


def _rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


async def fan_out(*, base: str, pid: int, users: Users, streams: int) -> FanOut:
    port = int(base.rsplit(":", 1)[1])
    # The fan-out user is the last one: no other section's turns reach its streams.
    user = len(users.ids) - 1
    tokens = await users.tokens(streams, user=user)
    chat_token = await users.token(user)

    # Warm-up: one stream opened and closed, so first-use costs are not counted per stream.
    warm = await SseConnection.open(port, "/api/events", tokens[0])
    async for event, _ in warm.events():
        if event == "ready":
            break
    warm.close()
    await asyncio.sleep(0.5)
    rss_before = _rss_mib(pid)

    connections: list[SseConnection] = []
    ready = [asyncio.Event() for _ in range(streams)]
    got: list[float | None] = [None] * streams
    gate = asyncio.Semaphore(OPEN_STREAMS_AT_ONCE)

    async def device(i: int) -> None:
        async with gate:
            conn = await SseConnection.open(port, "/api/events", tokens[i])
            connections.append(conn)
            if conn.status != 200:
                return
            frames = conn.events()
            async for event, _ in frames:
                if event == "ready":
                    ready[i].set()
                    break
        async for event, data in frames:
            if event == "message" and json.loads(data).get("role") == "user":
                got[i] = time.time()
                return

    started = time.perf_counter()
    tasks = [asyncio.create_task(device(i)) for i in range(streams)]
    turn_at: float | None = None
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                await asyncio.gather(*(e.wait() for e in ready))
        open_seconds = time.perf_counter() - started
        opened = sum(e.is_set() for e in ready)
        await asyncio.sleep(1.0)  # let the server settle before reading its memory
        rss_after = _rss_mib(pid)

        headers = {
            "Authorization": f"Bearer {chat_token}",
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
        }
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            await client.get("/nothing-here")  # connected before the clock starts
            posted = time.time()
            async with client.stream(
                "POST", "/api/chat", content=_chat_body("One message, a thousand devices"),
                headers=headers,
            ) as r:  # fmt: skip
                async for line in r.aiter_lines():
                    if line.startswith("event: turn") and turn_at is None:
                        turn_at = time.time()
                    if line.startswith("event: done"):
                        break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in connections:
            conn.close()
    delays = [(t - posted) * 1000 for t in got if t is not None]
    result = FanOut(
        streams=streams,
        opened=opened,
        open_seconds=open_seconds,
        rss_before_mib=rss_before,
        rss_after_mib=rss_after,
        received=len(delays),
        after_post_ms=delays,
        turn_event_ms=(turn_at - posted) * 1000 if turn_at else None,
    )
    print(
        f"  real model: fan-out to {streams} streams: {opened} opened in {open_seconds:.1f} s, "
        f"{result.received} heard the message; after the POST: min "
        f"{fmt_ms(min(delays, default=float('nan')))} median "
        f"{fmt_ms(percentile(delays, 50))} max {fmt_ms(max(delays, default=float('nan')))} ms; "
        f"RSS {rss_before:.0f} → {rss_after:.0f} MiB "
        f"({fmt_ms(result.kib_per_stream)} KiB per stream)",
        flush=True,
    )
    return result


# -- the section -------------------------------------------------------------------------


def _ms_goal(name: str, target_ms: float, value: float | None, detail: str) -> Goal:
    known = value is not None and value == value  # not NaN
    return Goal(
        name,
        f"≤ {target_ms:.0f} ms",
        value if known else None,
        (value <= target_ms) if known and value is not None else None,
        detail,
        unit="ms",
    )


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    if not mode.real_model_json_users:
        report.note("real-model section skipped in this mode")
        return {}
    nofile = raise_nofile_limit()
    needed = max(mode.real_model_event_streams, *mode.real_model_json_users) + 200
    if nofile < needed:
        report.note(
            f"real model: open files limited to {nofile}; the fan-out may fail to open "
            f"{mode.real_model_event_streams} streams (raise `ulimit -n`)"
        )
    seconds = mode.real_model_seconds
    url = await server.migrated_database("real_model")
    tmp = Path(tempfile.mkdtemp(prefix="chatkeep-bench-real-"))
    bursts: list[Burst] = []
    fan: FanOut | None = None
    try:
        with fake_model(seconds) as model_base, chatkeep(url, model_base, tmp) as (base, pid):
            users_needed = max(
                *mode.real_model_json_users, *mode.real_model_stream_users,
                mode.real_model_latency_concurrency,
            ) + 1  # fmt: skip
            users = await make_users(base, url, users_needed)
            tokens = await users.tokens(users_needed - 1)
            common = {"base": base, "model_base": model_base, "database_url": url, "pid": pid}
            # A warm-up turn: imports, the pool, the model client's first connection.
            await burst(
                name="warm-up", tokens=tokens, turns=2, concurrency=2, streamed=True,
                model_seconds=seconds, **common,
            )  # fmt: skip
            for n in mode.real_model_json_users:
                bursts.append(
                    await burst(
                        name=f"JSON, {n} at once",
                        tokens=tokens,
                        turns=n,
                        concurrency=n,
                        streamed=False,
                        model_seconds=seconds,
                        **common,
                    )
                )
            for n in mode.real_model_stream_users:
                bursts.append(
                    await burst(
                        name=f"streamed, {n} at once",
                        tokens=tokens,
                        turns=n,
                        concurrency=n,
                        streamed=True,
                        model_seconds=seconds,
                        **common,
                    )
                )
            c = mode.real_model_latency_concurrency
            latency = await burst(
                name=f"streamed, {c} at a time", tokens=tokens,
                turns=mode.real_model_latency_turns, concurrency=c, streamed=True,
                model_seconds=seconds, **common,
            )  # fmt: skip
            bursts.append(latency)
            fan = await fan_out(
                base=base, pid=pid, users=users, streams=mode.real_model_event_streams
            )
            server_rss = _rss_mib(pid)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        await server.drop(url)

    table = Table(
        f"Real model: {seconds:g} s per reply, streamed word by word (fake model in its own "
        "process; one Chatkeep process, pool 10 + 10 overflow)",
        [
            "turns",
            "path",
            "sent",
            "answered 200",
            "503",
            "other errors",
            "wall s",
            "wall / model time",
            "DB conns in use, peak (all / while the model thinks)",
            "DB conns open, peak",
            "first token → first delta p50 / p90 ms",
            "server CPU ms per reply",
        ],
    )
    for b in bursts:
        lat = (
            f"{fmt_ms(percentile(b.first_delta_ms, 50))} / "
            f"{fmt_ms(percentile(b.first_delta_ms, 90))}"
            if b.first_delta_ms
            else "—"
        )
        thinking = "—" if b.peak_in_use_thinking is None else str(b.peak_in_use_thinking)
        table.add(
            b.name,
            b.path,
            b.turns,
            b.answered,
            b.busy,
            b.other_errors,
            f"{b.wall_s:.2f}",
            fmt_ratio(b.wall_s / seconds) if b.concurrency == b.turns else "—",
            f"{b.peak_in_use} / {thinking}",
            b.peak_open,
            lat,
            fmt_ms(b.cpu_ms_per_reply),
        )
    for b in bursts:
        if b.answered < b.turns:
            outcomes = ", ".join(f"{n} x {what}" for what, n in b.statuses.most_common())
            each = "; ".join(
                f"#{f['turn']} {f['outcome']} after {f['turn_took_s']:.2f} s"
                for f in b.raw["failed_turns"]
            )
            table.notes.append(
                f"{b.name}: {outcomes}; failures came {_spread(b.raw['failed_at_s'])} s "
                f"after the start. Every failed turn: {each}."
            )
    table.notes.append(
        "Each turn is its own signed-in user's first message, sent at the same moment "
        "(connections opened beforehand); wall time runs from the first request sent to "
        "the last answer. The last row sends its turns a few at a time, for latency."
    )
    table.notes.append(
        f"DB connections: the app's (application_name 'chatkeep') in pg_stat_activity every "
        f'{SAMPLE_SECONDS * 1000:.0f} ms; in use = active or idle in transaction. "While the '
        "model thinks\" is from the last turn's first token to the first turn's last token, "
        "when every turn is open and none is closing. The events listener is not counted "
        "(application_name 'chatkeep-events')."
    )
    table.notes.append(
        "First token → first delta: the fake model's clock when it sent a reply's first "
        "token, to the client's when the first `delta` event arrived (same machine)."
    )
    report.show(table)

    if fan is not None:
        fan_table = Table(
            f"Live events fan-out: {fan.streams:,} open GET /api/events streams of one user "
            "on one process, then one message",
            [
                "streams",
                "opened",
                "open s",
                "heard the message",
                "after the POST: min / median / max ms",
                "POST's own `turn` event ms",
                "server RSS MiB (before / after)",
                "KiB per stream",
            ],
        )
        fan_table.add(
            fan.streams,
            fan.opened,
            f"{fan.open_seconds:.1f}",
            fan.received,
            f"{fmt_ms(min(fan.after_post_ms, default=float('nan')))} / "
            f"{fmt_ms(percentile(fan.after_post_ms, 50))} / "
            f"{fmt_ms(max(fan.after_post_ms, default=float('nan')))}",
            fmt_ms(fan.turn_event_ms),
            f"{fan.rss_before_mib:.0f} / {fan.rss_after_mib:.0f}",
            fmt_ms(fan.kib_per_stream),
        )
        fan_table.notes.append(
            "Opened from the bench process on plain sockets, "
            f"{OPEN_STREAMS_AT_ONCE} at a time, each signed in with its own token (a device). "
            "Times run from the chat POST being sent to each stream reading the `message` "
            "event of that user message; the POST's `turn` event comes when the turn's "
            "first transaction has committed, which is also when the NOTIFY goes out."
        )
        report.show(fan_table)

    goals: list[Goal] = []
    by_users = {b.turns: b for b in bursts if b.path == "JSON"}
    for n in mode.real_model_json_users:
        b = by_users.get(n)
        r = b.wall_s / seconds if b else None
        goals.append(
            Goal(
                f"real model: wall time / model time, {n} users at once (JSON)",
                f"≤ {WALL_GOAL}x",
                r,
                None if r is None else r <= WALL_GOAL,
                f"{b.wall_s:.2f} vs {seconds:g} s" if b else "",
            )
        )
    top = by_users.get(max(mode.real_model_json_users))
    if top is not None:
        share = top.answered / top.turns
        goals.append(
            Goal(
                f"real model: answered / sent, {top.turns} users at once (pool 20 not the limit)",
                "1.00x",
                share,
                share == 1.0,
                f"{top.answered} of {top.turns}; {top.busy} x 503, {top.other_errors} other; "
                f"{top.peak_in_use} DB conns in use at peak",
            )
        )
    first_delta = _ms_goal(
        "real model: model's first token → client's first delta (median)",
        FIRST_DELTA_GOAL_MS,
        percentile(latency.first_delta_ms, 50) if bursts else None,
        f"p90 {fmt_ms(percentile(latency.first_delta_ms, 90))} ms, "
        f"{len(latency.first_delta_ms)} turns, {latency.concurrency} at a time",
    )
    if bursts and latency.answered < latency.turns:
        # A fast median of the turns that worked says nothing of the ones that failed.
        first_delta.met = False
        first_delta.detail += f"; {latency.turns - latency.answered} turns failed"
    goals.append(first_delta)
    goals.append(cpu_goal(bursts))
    goals.append(failures_goal(bursts))
    if fan is not None:
        worst = max(fan.after_post_ms) if fan.received == fan.streams else None
        goals.append(
            _ms_goal(
                f"real model: every one of {fan.streams:,} event streams hears a message (max)",
                FANOUT_GOAL_MS,
                worst,
                f"{fan.received} of {fan.streams} heard it; median "
                f"{fmt_ms(percentile(fan.after_post_ms, 50))} ms",
            )
        )
    report.goals.extend(goals)
    for g in goals:
        print(f"  goal: {g.name}: {g.measured()} — {g.verdict()}", flush=True)

    return {
        "real_model": {
            "model_seconds": seconds,
            "model_words": MODEL_WORDS,
            "server_rss_mib_at_end": round(server_rss, 1),
            "bursts": [
                {
                    "name": b.name,
                    "path": b.path,
                    "turns": b.turns,
                    "concurrency": b.concurrency,
                    "wall_s": round(b.wall_s, 3),
                    "wall_over_model": round(b.wall_s / seconds, 3),
                    "answered": b.answered,
                    "busy_503": b.busy,
                    "other_errors": b.other_errors,
                    "statuses": dict(b.statuses),
                    "failed_at_s": b.raw["failed_at_s"],
                    "failed_turns": b.raw["failed_turns"],
                    "first_delta_ms_p50": percentile(b.first_delta_ms, 50),
                    "first_delta_ms_p90": percentile(b.first_delta_ms, 90),
                    "first_delta_ms": [round(v, 2) for v in b.first_delta_ms],
                    "db_in_use_peak": b.peak_in_use,
                    "db_in_use_peak_while_thinking": b.peak_in_use_thinking,
                    "thinking_window_s": b.thinking_window_s,
                    "db_open_peak": b.peak_open,
                    "model_requests": b.model_requests,
                    "model_peak_in_flight": b.model_peak_in_flight,
                    "server_cpu_s": b.server_cpu_s,
                    "server_cpu_ms_per_reply": b.cpu_ms_per_reply,
                    "db_samples": b.raw["in_use_series"],
                }
                for b in bursts
            ],
            "fan_out": None
            if fan is None
            else {
                "streams": fan.streams,
                "opened": fan.opened,
                "open_seconds": round(fan.open_seconds, 2),
                "received": fan.received,
                "after_post_ms_min": min(fan.after_post_ms, default=None),
                "after_post_ms_p50": percentile(fan.after_post_ms, 50),
                "after_post_ms_max": max(fan.after_post_ms, default=None),
                "turn_event_ms": fan.turn_event_ms,
                "rss_before_mib": round(fan.rss_before_mib, 1),
                "rss_after_mib": round(fan.rss_after_mib, 1),
                "kib_per_stream": fan.kib_per_stream,
            },
        }
    }
