"""A real PgBouncer (Debian's) in transaction mode, started by the tests on a free port.

`make test` installs it when it can; without it the tests that need it skip, and fail
under CI=true.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.processes import free_port

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found:
        return found
    message = "PgBouncer is missing: sudo apt-get install -y pgbouncer"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _upstream(url: str) -> tuple[str, int, str]:
    """(host or socket directory, port, user) of a PostgreSQL URL."""
    parsed = urlparse(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "127.0.0.1"])[0]
    return host, parsed.port or 5432, parsed.username or "postgres"


class PgBouncer:
    """PgBouncer in front of the server of `upstream_url`; `url(db)` is the pooled URL."""

    def __init__(self, upstream_url: str, *, pool_size: int = 20) -> None:
        binary = pgbouncer_binary()
        host, port, self.user = _upstream(upstream_url)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chatkeep-pgbouncer-"))
        self.dir.chmod(0o755)
        (self.dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 1000\n"
            # The old configuration sends statement_timeout at start-up; let it through so
            # the tests see what it does next.
            "ignore_startup_parameters = extra_float_digits, statement_timeout\n"
        )
        for path in self.dir.iterdir():
            path.chmod(0o644)
        argv = [binary, str(config)]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root: run it as whoever may reach the upstream.
            argv[1:1] = ["-u", self._run_as(host)]
        self.log = (self.dir / "pgbouncer.log").open("w+b")
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_listening()

    @staticmethod
    def _run_as(host: str) -> str:
        if host.startswith("/"):
            return pwd.getpwuid(Path(host).stat().st_uid).pw_name
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                return name
            except KeyError:
                continue
        raise RuntimeError("no unprivileged user to run PgBouncer as")

    def _wait_listening(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(f"pgbouncer exited: {self.log.read().decode()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("pgbouncer did not start listening")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
