"""The embedded PostgreSQL stops with the last `python -m app serve` that uses it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ServerProcess

pytestmark = [pytest.mark.process]


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATE_LIMIT", "SESSION_", "SWEEP_", "DATABASE_"))
    }
    env.update(DATA_DIR=str(data_dir), LOG_LEVEL="WARNING")
    return env


def _serve(data_dir: Path, workers: int) -> ServerProcess:
    argv = [sys.executable, "-m", "app", "serve", "--port", "{port}", "--workers", str(workers)]
    return ServerProcess(argv, _embedded_env(data_dir))


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def _stop_for_good(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("workers", [1, 3])
def test_sigterm_stops_the_embedded_database(tmp_path, workers):
    server = _serve(tmp_path, workers)
    postmaster = None
    try:
        server.wait_ready(timeout=120)
        postmaster = _postmaster_pid(tmp_path)
        assert _alive(postmaster)
        # What a service manager or `docker stop` sends: SIGTERM to the main process only.
        os.kill(server.proc.pid, signal.SIGTERM)
        server.proc.wait(60)
        assert _wait_gone(postmaster), "the embedded PostgreSQL outlived the app"
        assert not (tmp_path / "pg" / "postmaster.pid").exists()
    finally:
        server.stop()
        if postmaster is not None:
            _stop_for_good(postmaster)


def test_database_stays_while_another_process_uses_it_and_survives_a_kill_9(tmp_path):
    first = _serve(tmp_path, 1)
    postmaster = None
    try:
        first.wait_ready(timeout=120)
        postmaster = _postmaster_pid(tmp_path)
        # A second app on the same DATA_DIR attaches to the same server.
        second = _serve(tmp_path, 2)
        try:
            second.wait_ready(timeout=120)
            assert _postmaster_pid(tmp_path) == postmaster
            # The first one dies without a chance to clean up...
            first.kill_hard()
            # ...and the second one, stopping normally, is now the last user: it stops it.
            os.kill(second.proc.pid, signal.SIGTERM)
            second.proc.wait(60)
        finally:
            second.stop()
        assert _wait_gone(postmaster), "the embedded PostgreSQL outlived the app"
    finally:
        first.stop()
        if postmaster is not None:
            _stop_for_good(postmaster)

    # A later start finds its own database again and stops it too (Ctrl+C this time).
    again = _serve(tmp_path, 1)
    try:
        again.wait_ready(timeout=120)
        postmaster = _postmaster_pid(tmp_path)
        os.kill(again.proc.pid, signal.SIGINT)
        again.proc.wait(60)
        assert _wait_gone(postmaster)
    finally:
        again.stop()
        _stop_for_good(postmaster)


def test_cli_command_leaves_a_running_server_alone(tmp_path):
    server = _serve(tmp_path, 1)
    postmaster = None
    try:
        server.wait_ready(timeout=120)
        postmaster = _postmaster_pid(tmp_path)
        done = subprocess.run(
            [sys.executable, "-m", "app", "migrate"],
            env=_embedded_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert _alive(postmaster)
        assert server.proc.poll() is None
    finally:
        server.stop()
        if postmaster is not None:
            assert _wait_gone(postmaster)
