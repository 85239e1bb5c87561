"""Real server processes for tests that need what only a process shows."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from app.core.runtime import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(
    *,
    database_url: str,
    data_dir: Path,
    secret_key: str,
    drop: tuple[str, ...] = ("RATE_LIMIT",),
    **values: str,
) -> dict[str, str]:
    """This process's environment without the settings named by `drop` (prefixes), for
    a server on `database_url` with rate limits off and quiet logs, then `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        SECRET_KEY=secret_key,
        LOG_LEVEL="WARNING",
        RATE_LIMIT_ENABLED="false",
        **values,
    )
    return env


class ServerProcess:
    """Runs `argv` (with `{port}` filled in) in its own process group on a free port."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        # One web process unless the test asks for more: WORKERS=0 would start one per
        # core, which costs each server's start-up and is what few tests are about.
        env = {"WORKERS": "1", **env}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [arg.format(port=self.port) for arg in argv],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"server exited: {out}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not become ready")

    def kill_hard(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_hard()
