"""Jobs across real processes: an export started on one instance is downloaded from
another, and a worker killed with SIGKILL in the middle of an import leaves nothing of it
visible; the next worker runs the job again from its stored input."""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess

pytestmark = [
    pytest.mark.process,
    pytest.mark.storage,
    # No worker of the test process may take these jobs: only the servers'.
    pytest.mark.usefixtures("without_process_app"),
]


def _env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT", "SWEEP", "JOB_"))}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        SECRET_KEY="jobs-secret-" + "j" * 40,
        LOG_LEVEL="WARNING",
        SWEEPER_ENABLED="false",
        RATE_LIMIT_ENABLED="false",
        JOB_POLL_SECONDS="0.2",
        # One process per instance: the tests tell the instances apart by who ran a job.
        WORKERS="1",
        **extra,
    )
    return env


SERVE = [sys.executable, "-m", "app", "serve", "--port", "{port}"]
WORKER = [sys.executable, "-m", "app", "worker"]


class WorkerProcess(ServerProcess):
    """`python -m app worker`: no port to wait on; ready when it says so."""

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if "Job worker running" in line:
                return
            if not line and self.proc.poll() is not None:
                raise AssertionError("the worker exited")
        raise AssertionError("the worker did not start")


def _user(base: str, email: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
        assert r.status_code == 201, r.text
        r = c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _until(c: httpx.Client, path: str, headers, done, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = c.get(path, headers=headers).json()
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"not reached: {body}")


async def _scalar(database_url: str, statement: str, **params: object) -> object:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            return (await conn.execute(sa.text(statement), params)).scalar_one()
    finally:
        await engine.dispose()


@pytest.fixture
async def clean(database_url: str) -> None:
    await _truncate(database_url)


async def test_an_export_started_on_one_instance_downloads_from_another(
    database_url, tmp_path, clean
):
    # A runs the only worker; B has none and shares nothing with A but the database.
    a = ServerProcess(SERVE, _env(database_url, tmp_path / "a"))
    b = ServerProcess(SERVE, _env(database_url, tmp_path / "b", JOB_WORKER_ENABLED="false"))
    try:
        a.wait_ready()
        b.wait_ready()
        headers = _user(a.base, "two-instances@example.com")
        with httpx.Client(base_url=a.base, timeout=30) as on_a:
            for i in range(3):
                r = on_a.post(
                    "/api/chat",
                    json={"messages": [{"role": "user", "content": f"conversation {i}"}]},
                    headers=headers,
                )
                assert r.status_code == 200, r.text
            r = on_a.post("/api/export/jobs", headers=headers)
            assert r.status_code == 202, r.text
            status_url = r.json()["statusUrl"]
        with httpx.Client(base_url=b.base, timeout=30) as on_b:
            job = _until(on_b, status_url, headers, lambda j: j["status"] in {"done", "failed"})
            assert job["status"] == "done", job
            r = on_b.get(job["downloadUrl"], headers=headers)
            assert r.status_code == 200, r.text
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        assert zf.testzip() is None
        doc = json.loads(zf.read("conversations.json"))
        assert len(doc["conversations"]) == 3
        assert not list((tmp_path / "b").glob("spool/download-*"))  # nothing left behind
    finally:
        a.stop()
        b.stop()


CONVERSATIONS = 3000


def _big_export() -> bytes:
    text = "words of an imported message " * 30
    return json.dumps(
        {
            "format": "chatkeep.export",
            "version": 1,
            "exportedAt": "2026-01-01T00:00:00Z",
            "conversations": [
                {
                    "id": f"source-{i}",
                    "title": f"Imported {i}",
                    "status": "archived",
                    "createdAt": "2026-01-01T00:00:00Z",
                    "lastActivityAt": "2026-01-01T00:00:00Z",
                    "messageCount": 2,
                    "messages": [
                        {
                            "seq": 1,
                            "role": "user",
                            "content": f"{text} {i}",
                            "createdAt": "2026-01-01T00:00:00Z",
                        },
                        {
                            "seq": 2,
                            "role": "assistant",
                            "content": f"{text} reply {i}",
                            "createdAt": "2026-01-01T00:00:01Z",
                        },
                    ],
                }
                for i in range(CONVERSATIONS)
            ],
        }
    ).encode()


async def test_a_worker_killed_mid_import_leaves_nothing_and_the_job_runs_again(
    database_url, tmp_path, clean
):
    # The web server runs no worker: the job runs in a `python -m app worker` process.
    server = ServerProcess(SERVE, _env(database_url, tmp_path / "web", JOB_WORKER_ENABLED="false"))
    worker_env = _env(
        database_url,
        tmp_path / "worker",
        JOB_HEARTBEAT_SECONDS="0.2",
        JOB_STALE_SECONDS="2",
        # Small batches: the import writes many, and tells its progress after each.
        IMPORT_BATCH_BYTES="16384",
    )
    worker = WorkerProcess(WORKER, worker_env)
    second: WorkerProcess | None = None
    try:
        server.wait_ready()
        worker.wait_ready()
        headers = _user(server.base, "killed-worker@example.com")
        with httpx.Client(base_url=server.base, timeout=60) as c:
            r = c.post("/api/import/jobs", headers=headers, content=_big_export())
            assert r.status_code == 202, r.text
            status_url = r.json()["statusUrl"]
            # Killed once it has written part of the import (not yet committed).
            running = _until(
                c,
                status_url,
                headers,
                lambda j: j["status"] != "queued" and j["progress"]["done"] > 0,
            )
            assert running["status"] == "running", running
            worker.kill_hard()

            # Nothing of the half-done import is visible, and the job is not finished.
            sessions = await _scalar(database_url, "SELECT count(*) FROM chat_session")
            assert sessions == 0
            assert c.get("/api/sessions?status=all", headers=headers).json()["items"] == []
            assert c.get(status_url, headers=headers).json()["status"] == "running"

            # Another worker takes the job once its heartbeat is stale, and imports it all.
            second = WorkerProcess(WORKER, worker_env)
            second.wait_ready()
            job = _until(c, status_url, headers, lambda j: j["status"] in {"done", "failed"})
            assert job["status"] == "done", job
            assert job["attempts"] == 2
            assert job["result"]["imported"] == CONVERSATIONS
            assert job["progress"]["done"] == CONVERSATIONS
        sessions = await _scalar(database_url, "SELECT count(*) FROM chat_session")
        assert sessions == CONVERSATIONS  # once each: the killed try left nothing behind
        inputs = await _scalar(database_url, "SELECT count(*) FROM job_chunk")
        assert inputs == 0
    finally:
        for process in (second, worker, server):
            if process is not None:
                process.stop()


async def test_two_instances_run_each_scheduled_interval_once(database_url, tmp_path, clean):
    """Both instances queue every interval's runs (a one-second schedule); each
    (kind, interval) is one row, taken once (attempt 1) and done, and both instances took
    part in queueing and running them."""
    fast = {
        "PURGE_INTERVAL_SECONDS": "1",
        "JOB_PURGE_INTERVAL_SECONDS": "1",
        "RETENTION_INTERVAL_SECONDS": "1",
    }
    a = ServerProcess(SERVE, _env(database_url, tmp_path / "a", **fast))
    b = ServerProcess(SERVE, _env(database_url, tmp_path / "b", **fast))
    try:
        a.wait_ready()
        b.wait_ready()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            done = await _scalar(
                database_url,
                "SELECT count(DISTINCT scheduled_for) FROM job "
                "WHERE kind = 'trash_purge' AND status = 'done'",
            )
            if int(done) >= 8:  # type: ignore[call-overload]
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the scheduled runs did not come")
    finally:
        a.stop()
        b.stop()
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT kind, scheduled_for, status, attempts, params, result FROM job "
                        "WHERE user_id IS NULL"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    per_interval: dict[tuple[str, object], int] = {}
    for r in rows:
        per_interval[(r.kind, r.scheduled_for)] = per_interval.get((r.kind, r.scheduled_for), 0) + 1
    assert set(per_interval.values()) == {1}
    done = [r for r in rows if r.status == "done"]
    assert {r.kind for r in done} == {
        "job_purge",
        "trash_purge",
        "share_link_purge",
        "idempotency_purge",
        "sign_in_purge",
        "account_event_purge",
        "retention",
    }
    assert all(r.attempts == 1 for r in done)
    assert len({r.params["queuedBy"] for r in rows}) == 2
    assert len({r.result["ranBy"] for r in done}) == 2
