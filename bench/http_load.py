"""Throughput over HTTP: real servers (uvicorn, two workers) under wrk from another process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

from app.core.runtime import PROJECT_ROOT
from bench.modes import Mode
from bench.pg import BenchServer, connect
from bench.report import Report, Table, fmt_ms, fmt_ratio, ratio_goal

LUA = Path(__file__).with_name("chat.lua")
PASSWORD = "bench password, long enough"
SECRET_KEY = "bench-http-" + "k" * 40
WORKERS = 2
RESTART_PROBES = 20
# Turns/s against the in-memory dict, at this many connections (the top one when absent).
GOAL_CONNECTIONS = 16
THROUGHPUT_GOAL = 0.15


@dataclass
class LoadResult:
    server: str
    concurrency: int
    requests: int
    seconds: float
    turns_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    continued: int
    broken: int
    peak_rss_mib: float
    peak_worker_rss_mib: float
    server_cpu_ms_per_turn: float | None
    pg_cpu_ms_per_turn: float | None
    raw: dict[str, Any] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _tree(pid: int | None) -> list[psutil.Process]:
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class RssSampler:
    """Peak resident memory of a server: its master process plus all workers, every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_total = 0
        self.peak_worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                procs = [self.root, *self.root.children(recursive=True)]
                sizes = []
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        sizes.append(p.memory_info().rss)
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_worker = max(self.peak_worker, max(sizes[1:] or sizes))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def asgi_server() -> str:
    """The ASGI server Chatkeep runs on here: BENCH_ASGI_SERVER, `uvicorn` (httptools and
    uvloop, as `python -m app serve`) or `granian` (when installed), to compare them."""
    name = os.environ.get("BENCH_ASGI_SERVER", "uvicorn")
    if name not in {"uvicorn", "granian"}:
        raise SystemExit(f"BENCH_ASGI_SERVER={name}: uvicorn or granian")
    return name


@contextlib.contextmanager
def serve(
    app_path: str,
    env: dict[str, str],
    port: int,
    workers: int = WORKERS,
    server: str = "uvicorn",
) -> Iterator[subprocess.Popen[bytes]]:
    if server == "granian":
        cmd = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--loop", "uvloop",
            "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--backlog", "2048", app_path,
        ]  # fmt: skip
    else:
        cmd = [
            sys.executable, "-m", "uvicorn", app_path,
            *(["--workers", str(workers)] if workers > 1 else []),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--log-level", "warning",
            "--no-access-log",
        ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(proc, app_path, port, log)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], app_path: str, port: int, log: Any) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{app_path} exited: {tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{app_path} did not become healthy in 60 s")
        time.sleep(0.2)


async def _sign_in(base: str, users: int) -> list[str]:
    """Registers users through the real API and signs each in; returns bearer tokens."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(i: int) -> str:
            email = f"bench-{i}-{uuid.uuid4().hex[:8]}@example.com"
            r = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
            r = await client.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
            r.raise_for_status()
            token: str = r.json()["access_token"]
            return token

        return list(await asyncio.gather(*(one(i) for i in range(users))))


def _wrk(
    url: str,
    concurrency: int,
    seconds: int,
    tokens_file: Path,
    turns: int,
    pid: int,
    pg_pid: int | None = None,
) -> tuple[dict[str, Any], RssSampler]:
    """One wrk run; the JSON it prints plus the server's CPU seconds (and PostgreSQL's)."""
    cmd = [
        "wrk", "-t", str(concurrency), "-c", str(concurrency), "-d", f"{seconds}s",
        "--timeout", "10s", "-s", str(LUA), url, "--", str(tokens_file), str(turns),
    ]  # fmt: skip
    server_procs, pg_procs = _tree(pid), _tree(pg_pid)
    server_cpu, pg_cpu = _cpu_seconds(server_procs), _cpu_seconds(pg_procs)
    with RssSampler(pid) as sampler:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-1000:]}"
        )
    raw: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    raw["server_cpu_s"] = _cpu_seconds(server_procs) - server_cpu
    # Backends that start during the run are missed; the pools are warm by then.
    raw["pg_cpu_s"] = _cpu_seconds(pg_procs) - pg_cpu if pg_procs else None
    return raw, sampler


def _result(name: str, c: int, raw: dict[str, Any], sampler: RssSampler) -> LoadResult:
    seconds = raw["duration_us"] / 1e6
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    ok = raw["requests"] - raw["failed"]
    return LoadResult(
        server=name,
        concurrency=c,
        requests=raw["requests"],
        seconds=seconds,
        turns_per_s=ok / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
        continued=raw["continued"],
        broken=raw["broken"],
        peak_rss_mib=sampler.peak_total / 2**20,
        peak_worker_rss_mib=sampler.peak_worker / 2**20,
        server_cpu_ms_per_turn=raw["server_cpu_s"] * 1000 / ok if ok else None,
        pg_cpu_ms_per_turn=raw["pg_cpu_s"] * 1000 / ok
        if ok and raw["pg_cpu_s"] is not None
        else None,
        raw=raw,
    )


async def _start_conversations(base: str, tokens: list[str], count: int) -> list[tuple[str, str]]:
    """First turns of `count` conversations; returns (token, session id) pairs."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def first(i: int) -> tuple[str, str]:
            token = tokens[i % len(tokens)]
            r = await client.post(
                "/api/chat",
                json={"messages": [{"role": "user", "content": f"remember the number {i}"}]},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            return token, str(r.json()["sessionId"])

        return list(await asyncio.gather(*(first(i) for i in range(count))))


async def _continued(base: str, started: list[tuple[str, str]]) -> int:
    """How many of the conversations the server still remembers: the follow-up's reply
    (the echo assistant's) quotes the first message, in the same session."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def follow_up(i: int, token: str, sid: str) -> bool:
            r = await client.post(
                "/api/chat",
                json={"sessionId": sid, "messages": [{"role": "user", "content": "which one?"}]},
                headers={"Authorization": f"Bearer {token}"},
            )
            if r.status_code != 200:
                return False
            body = r.json()
            return body["sessionId"] == sid and f'"remember the number {i}"' in body["reply"]

        return sum(
            await asyncio.gather(*(follow_up(i, t, sid) for i, (t, sid) in enumerate(started)))
        )


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    if not mode.http:
        report.note("HTTP section skipped in this mode")
        return {}
    if shutil.which("wrk") is None:
        report.note("HTTP section skipped: wrk is not installed (`apt-get install -y wrk`)")
        return {}
    url = await server.migrated_database("http")
    results: list[LoadResult] = []
    tmp = Path(tempfile.mkdtemp(prefix="chatkeep-bench-"))
    tokens_file = tmp / "tokens.txt"
    common = {
        "SECRET_KEY": SECRET_KEY,
        "DATA_DIR": str(tmp / "data"),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    chatkeep_server = asgi_server()
    servers = [
        ("Chatkeep", "bench.chatkeep_asgi:app", {"DATABASE_URL": url}, server.postmaster_pid),
        ("in-memory dict", "bench.memory_app:app", {}, None),
    ]
    acked = 0
    survived: dict[str, str] = {}
    tokens: list[str] = []
    try:
        for name, app_path, env, pg_pid in servers:
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            on = chatkeep_server if name == "Chatkeep" else "uvicorn"
            with serve(app_path, {**common, **env}, port, server=on) as proc:
                if not tokens:
                    tokens = await _sign_in(base, mode.http_users)
                    tokens_file.write_text("\n".join(tokens) + "\n")
                # A short warm-up: imports, pools and statement caches of both workers.
                await asyncio.to_thread(
                    _wrk, base, 4, 1, tokens_file, mode.http_turns_per_conversation, proc.pid
                )
                for c in mode.http_concurrency:
                    raw, sampler = await asyncio.to_thread(
                        _wrk, base, c, mode.http_seconds, tokens_file,
                        mode.http_turns_per_conversation, proc.pid, pg_pid,
                    )  # fmt: skip
                    result = _result(name, c, raw, sampler)
                    if name == "Chatkeep":
                        acked += result.requests - raw["failed"]
                    results.append(result)
                    print(
                        f"  http: {name:<15} c={c:<3} {result.turns_per_s:8.0f} turns/s  "
                        f"p50 {fmt_ms(result.p50_ms)} ms  p99 {fmt_ms(result.p99_ms)} ms  "
                        f"errors {result.errors}  server CPU "
                        f"{fmt_ms(result.server_cpu_ms_per_turn)} ms/turn  "
                        f"peak RSS {result.peak_rss_mib:.0f} MiB",
                        flush=True,
                    )
                started = await _start_conversations(base, tokens, RESTART_PROBES)
            # A restart (a deploy, a crash): do the conversations survive it?
            with serve(app_path, {**common, **env}, port, server=on):
                kept = await _continued(base, started)
            survived[name] = f"{kept} of {len(started)}"
        async with connect(url) as conn:
            stored_turns = await conn.fetchval(
                "SELECT count(*) FROM chat_message WHERE role = 'assistant'"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        await server.drop(url)

    by = {(r.server, r.concurrency): r for r in results}
    table = Table(
        f"Throughput over HTTP (Chatkeep on {chatkeep_server}, the dict on uvicorn, "
        f"{WORKERS} workers each; wrk, one signed-in user per "
        f"connection, {mode.http_turns_per_conversation}-turn conversations, "
        f"{mode.http_seconds} s per level)",
        [
            "server",
            "conns",
            "turns/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "server CPU ms/turn",
            "PG CPU ms/turn",
            "peak RSS MiB (all / worker)",
            "turns/s vs in-memory",
        ],
    )
    for r in results:
        mem = by.get(("in-memory dict", r.concurrency))
        vs = r.turns_per_s / mem.turns_per_s if mem and mem.turns_per_s else None
        table.add(
            r.server,
            r.concurrency,
            f"{r.turns_per_s:,.0f}",
            fmt_ms(r.p50_ms),
            fmt_ms(r.p99_ms),
            r.errors,
            fmt_ms(r.server_cpu_ms_per_turn),
            fmt_ms(r.pg_cpu_ms_per_turn),
            f"{r.peak_rss_mib:.0f} / {r.peak_worker_rss_mib:.0f}",
            fmt_ratio(vs),
        )
    table.notes.append(
        "Chatkeep is the real app (`bench/chatkeep_asgi.py` = `app.asgi:app` with the echo "
        "assistant: sign-in lookup, CSRF, metrics and security middleware, commit before "
        "reply). The in-memory design is `bench/memory_app.py`: same endpoint shape and JWT "
        "check, no database. Access logs off for both; wrk, the servers and PostgreSQL share "
        "the machine's cores."
    )
    table.notes.append(
        f"Conversations that survive a server restart (a deploy or a crash; {RESTART_PROBES} "
        f"started, the server restarted, then a follow-up sent): Chatkeep "
        f"{survived.get('Chatkeep', '—')}, in-memory dict {survived.get('in-memory dict', '—')}. "
        "The in-memory design also splits conversations between its workers: each has its own "
        "dict, and a request that reaches the other worker starts afresh (under wrk each "
        "connection keeps its worker, so the figures above do not show it)."
    )
    table.notes.append(
        f"Chatkeep acknowledged {acked:,} turns in the measured runs and stored "
        f"{stored_turns:,} replies (warm-up, sign-in and probes included): none lost."
        if stored_turns >= acked
        else f"Chatkeep acknowledged {acked:,} turns but stored only {stored_turns:,} replies!"
    )
    report.show(table)
    levels = mode.http_concurrency
    at = GOAL_CONNECTIONS if GOAL_CONNECTIONS in levels else max(levels)
    ck, mem = by.get(("Chatkeep", at)), by.get(("in-memory dict", at))
    goal = ratio_goal(
        f"Chatkeep HTTP throughput / in-memory at {at} connections",
        f"≥ {THROUGHPUT_GOAL}x",
        ck.turns_per_s if ck else None,
        mem.turns_per_s if mem else None,
        lambda r: r >= THROUGHPUT_GOAL,
        unit="turns/s",
    )
    if ck is not None and ck.server_cpu_ms_per_turn is not None:
        goal.detail += f"; {fmt_ms(ck.server_cpu_ms_per_turn)} ms server CPU per turn"
    report.goals.append(goal)
    return {
        "http": [{k: v for k, v in r.__dict__.items()} for r in results],
        "http_conversations_surviving_restart": survived,
    }
