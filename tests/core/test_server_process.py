"""What only a real server process shows: start-up, kill -9, several workers, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.core.runtime import PROJECT_ROOT
from tests.conftest import TEST_PASSWORD, _truncate
from tests.processes import ServerProcess

pytestmark = [pytest.mark.process, pytest.mark.storage]


def _env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATE_LIMIT", "SESSION_", "SWEEP_"))
    }
    env.update(DATABASE_URL=database_url, DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", **extra)
    return env


def app_server(database_url: str, data_dir: Path, workers: int = 1, **extra: str) -> ServerProcess:
    argv = [sys.executable, "-m", "app", "serve", "--port", "{port}", "--workers", str(workers)]
    return ServerProcess(argv, _env(database_url, data_dir, **extra))


async def test_kill_9_loses_no_acknowledged_message(database_url, tmp_path):
    await _truncate(database_url)
    server = app_server(database_url, tmp_path, workers=2)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=10) as c:
            c.post("/auth/register", json={"email": "k9@example.com", "password": TEST_PASSWORD})
            token = c.post(
                "/auth/jwt/login", data={"username": "k9@example.com", "password": TEST_PASSWORD}
            ).json()["access_token"]
            h = {"Authorization": f"Bearer {token}"}
            sid = None
            for i in range(10):
                body = {"messages": [{"role": "user", "content": f"note {i}"}]}
                if sid:
                    body["sessionId"] = sid
                r = c.post("/api/chat", json=body, headers=h)
                assert r.status_code == 200
                sid = r.json()["sessionId"]
        server.kill_hard()
    finally:
        server.stop()

    restarted = app_server(database_url, tmp_path, workers=1)
    try:
        restarted.wait_ready()
        with httpx.Client(base_url=restarted.base, timeout=10) as c:
            # The signing key was kept in DATA_DIR: the old token still works after a restart.
            detail = c.get(f"/api/sessions/{sid}", headers=h).json()
            assert [m["content"] for m in detail["messages"] if m["role"] == "user"] == [
                f"note {i}" for i in range(10)
            ]
            r = c.post(
                "/api/chat",
                json={"messages": [{"role": "user", "content": "after"}], "sessionId": sid},
                headers=h,
            )
            assert r.json()["sessionId"] == sid
            assert c.get(f"/api/sessions/{sid}", headers=h).json()["messageCount"] == 22
    finally:
        restarted.stop()


async def test_cli_creates_a_superuser_and_counts_sessions(database_url, tmp_path):
    await _truncate(database_url)
    env = _env(database_url, tmp_path)
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "users",
            "create-superuser",
            "Boss@Example.com",
            "--password-stdin",
        ],
        input=TEST_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert "Created superuser" in made.stdout

    server = app_server(database_url, tmp_path)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=10) as c:
            token = c.post(
                "/auth/jwt/login", data={"username": "boss@example.com", "password": TEST_PASSWORD}
            ).json()["access_token"]
            stats = c.get("/api/admin/sessions/stats", headers={"Authorization": f"Bearer {token}"})
            assert stats.status_code == 200
            assert stats.json()["users"] == 1
    finally:
        server.stop()

    count = subprocess.run(
        [sys.executable, "-m", "app", "sessions", "count"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )
    assert count.returncode == 0, count.stderr
    assert "users: 1" in count.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "app", "sessions", "clear", "session_1_" + "z" * 24],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=60,
    )
    assert missing.returncode == 1
    assert "No session" in missing.stderr
