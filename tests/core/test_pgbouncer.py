"""Two app instances through a real PgBouncer in transaction mode.

With `DB_POOLER=pgbouncer` every request of both instances succeeds. Without it the two
processes prepare statements under the same names on the server connections PgBouncer
shares between them, and requests fail: the control run shows this test can fail.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import TEST_PASSWORD, _truncate
from tests.pgbouncer import PgBouncer
from tests.processes import ServerProcess

pytestmark = pytest.mark.process


def _servers(pooled_url: str, direct_url: str, tmp_path, pooler: str) -> list[ServerProcess]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATE_LIMIT", "SESSION_", "SWEEP_", "DB_", "DATABASE_"))
    }
    env.update(
        DATABASE_URL=pooled_url,
        DATABASE_DIRECT_URL=direct_url,
        DB_POOLER=pooler,
        DATA_DIR=str(tmp_path),
        LOG_LEVEL="WARNING",
        RATE_LIMIT_ENABLED="false",
        SWEEPER_ENABLED="true",
        SWEEP_INTERVAL_SECONDS="1",
    )
    argv = [sys.executable, "-m", "app", "serve", "--port", "{port}", "--workers", "1"]
    return [ServerProcess(argv, env) for _ in range(2)]


def _session_of_work(base: str, email: str, timeout: float) -> list[int]:
    statuses: list[int] = []
    try:
        _work(base, email, statuses, timeout)
    except httpx.HTTPError:
        statuses.append(599)  # no answer in time
    return statuses


def _work(base: str, email: str, statuses: list[int], timeout: float) -> None:
    with httpx.Client(base_url=base, timeout=timeout) as c:
        r = c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        statuses.append(r.status_code)
        r = c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        statuses.append(r.status_code)
        if r.status_code != 200:
            return
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        sid = None
        for i in range(4):
            body = {"messages": [{"role": "user", "content": f"note {i}"}]}
            if sid:
                body["sessionId"] = sid
            r = c.post("/api/chat", json=body, headers=h)
            statuses.append(r.status_code)
            if r.status_code == 200:
                sid = r.json()["sessionId"]
        statuses.append(c.get("/api/sessions", params={"q": "note"}, headers=h).status_code)
        statuses.append(c.get("/api/export?format=zip", headers=h).status_code)


def _run(servers: list[ServerProcess], timeout: float = 60) -> list[int]:
    try:
        for server in servers:
            server.wait_ready(timeout=30)
        jobs = [(s.base, f"u{i}-{n}@example.com") for n, s in enumerate(servers) for i in range(2)]
        with ThreadPoolExecutor(len(jobs)) as pool:
            return [
                code
                for codes in pool.map(lambda j: _session_of_work(*j, timeout), jobs)
                for code in codes
            ]
    finally:
        # Every process was started when it was built: stop them all, even those after one
        # that failed to start (the control's), or they outlive the test.
        for server in servers:
            server.stop()


async def test_two_instances_work_through_pgbouncer_in_transaction_mode(
    direct_database_url, tmp_path
):
    database = direct_database_url.split("?", 1)[0].rsplit("/", 1)[1]
    bouncer = PgBouncer(direct_database_url, pool_size=2)
    try:
        await _truncate(direct_database_url)
        statuses = _run(_servers(bouncer.url(database), direct_database_url, tmp_path, "pgbouncer"))
        assert statuses and all(code < 400 for code in statuses), statuses

        # Control: the same without DB_POOLER fails (duplicate or missing prepared statements).
        await _truncate(direct_database_url)
        try:
            control = _run(
                _servers(bouncer.url(database), direct_database_url, tmp_path, "none"), timeout=15
            )
        except AssertionError:  # an instance that cannot even start counts as failing
            control = [500]
        assert any(code >= 500 for code in control), control
    finally:
        bouncer.stop()
