"""A hung database (every PostgreSQL process SIGSTOPped): a prompt 503, then recovery.

Real processes: an embedded PostgreSQL of the test's own and the app as a server process.
Stopping the postmaster and its backends is what a network partition or a stalled
failover looks like from the app: connections stay open and nothing answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.core.embedded import start_embedded_postgres
from app.core.runtime import PROJECT_ROOT, run_migrations
from tests.conftest import TEST_PASSWORD
from tests.processes import ServerProcess

pytestmark = pytest.mark.process

# The app's bound (DB_COMMAND_TIMEOUT_SECONDS=5 by default) plus room for a busy machine.
ANSWER_WITHIN_SECONDS = 7.0


@pytest.fixture
def own_server():
    pgdata = PROJECT_ROOT / ".data" / f"frozen-pg-{os.getpid()}"
    url, server = start_embedded_postgres(pgdata)
    try:
        yield url, Path(server.pgdata)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def _postgres_pids(pgdata: Path) -> list[int]:
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    return [postmaster, *map(int, children)]


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _timed(client: httpx.Client, method: str, path: str, **kw) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kw)
    return response, time.monotonic() - started


def test_a_frozen_database_answers_503_promptly_and_service_recovers(own_server, tmp_path):
    url, pgdata = own_server
    run_migrations(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "DB_"))}
    env.update(
        DATABASE_URL=url,
        DATA_DIR=str(tmp_path),
        LOG_LEVEL="WARNING",
        SWEEPER_ENABLED="false",
        RATE_LIMIT_ENABLED="false",
    )
    argv = [sys.executable, "-m", "app", "serve", "--port", "{port}"]
    app = ServerProcess(argv, env)
    frozen: list[int] = []
    try:
        app.wait_ready()
        with httpx.Client(base_url=app.base, timeout=60) as c:
            c.post("/auth/register", json={"email": "f@example.com", "password": TEST_PASSWORD})
            token = c.post(
                "/auth/jwt/login", data={"username": "f@example.com", "password": TEST_PASSWORD}
            ).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            body = {"messages": [{"role": "user", "content": "before the freeze"}]}
            sid = c.post("/api/chat", json=body, headers=h).json()["sessionId"]
            # Several pooled connections, so the freeze catches idle ones too.
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda _: c.get("/api/sessions", headers=h), range(8)))

            frozen = _postgres_pids(pgdata)
            _signal_all(frozen, signal.SIGSTOP)
            calls = [
                ("POST", "/api/chat", {"json": {**body, "sessionId": sid}, "headers": h}),
                ("GET", "/api/sessions", {"headers": h}),
                ("GET", f"/api/sessions/{sid}", {"headers": h}),
                ("GET", "/api/me/limits", {"headers": h}),
                (
                    "POST",
                    "/auth/jwt/login",
                    {"data": {"username": "f@example.com", "password": "x"}},
                ),
                ("GET", "/healthz", {}),
            ]
            with ThreadPoolExecutor(len(calls)) as pool:
                results = list(pool.map(lambda call: _timed(c, call[0], call[1], **call[2]), calls))
            # A second wave: the pool now holds only connections that were dropped.
            results.append(_timed(c, "POST", "/api/chat", json=body, headers=h))
            for (method, path, _), (response, seconds) in zip(
                [*calls, calls[0]], results, strict=True
            ):
                assert response.status_code == 503, (method, path, response.text)
                assert seconds < ANSWER_WITHIN_SECONDS, (method, path, seconds)
                assert int(response.headers["retry-after"]) > 0
                if path != "/healthz":
                    assert response.headers["content-type"] == "application/problem+json"
                    assert response.json()["code"] == "database_unavailable"
            slowest = max(seconds for _, seconds in results)
            print(f"\nslowest 503 with the database frozen: {slowest:.2f}s")

            _signal_all(frozen, signal.SIGCONT)
            frozen = []
            deadline = time.monotonic() + 20
            while True:
                back = c.post(
                    "/api/chat",
                    json={"messages": [{"role": "user", "content": "after"}], "sessionId": sid},
                    headers=h,
                )
                if back.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert back.status_code == 200, back.text
            assert c.get("/healthz").status_code == 200
            metrics = c.get("/metrics").text
            assert "chatkeep_database_unavailable_total" in metrics
    finally:
        _signal_all(frozen, signal.SIGCONT)
        app.stop()
