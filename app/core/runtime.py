"""Start-up chores shared by the server, the CLI and the tests: find the database, migrate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic.config import Config

from alembic import command
from app.core.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_embedded_handles: list[Any] = []


def ensure_database_url(settings: Settings) -> str:
    """DATABASE_URL if set; otherwise start the embedded server under DATA_DIR and use it.

    The URL is exported to the environment so worker processes and Alembic reuse the
    same server instead of starting their own.
    """
    if settings.database_url:
        return settings.database_url
    from app.core.embedded import start_embedded_postgres

    url, handle = start_embedded_postgres(settings.data_dir / "pg")
    _embedded_handles.append(handle)
    settings.database_url = url
    os.environ["DATABASE_URL"] = url
    return url


def release_embedded_database() -> None:
    """Stop the embedded server if this process started it and nobody else uses it."""
    from app.core.embedded import release_embedded_postgres

    while _embedded_handles:
        release_embedded_postgres(_embedded_handles.pop())


class StopSignal(Exception):
    """SIGTERM arrived; raised so that clean-up code runs (a plain SIGTERM would not)."""


@contextlib.contextmanager
def stop_signal_raises() -> Iterator[None]:
    """Turn SIGTERM into StopSignal (and SIGINT into KeyboardInterrupt, as usual).

    Uvicorn shuts down gracefully on either signal and then raises it again so the
    process ends the way the signal asks; with the default SIGTERM action that would end
    it before any `finally` or atexit handler, leaving the embedded database running.
    """

    def handler(signum: int, frame: Any) -> None:
        raise StopSignal

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def direct_database_url(settings: Settings) -> str:
    """DATABASE_DIRECT_URL, else DATABASE_URL (or the embedded server's): never a pooler.

    Migrations take a session-level advisory lock, which transaction pooling would hand
    to another client's connection.
    """
    return settings.database_direct_url or ensure_database_url(settings)


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["skip_logging_config"] = True
    return cfg


def run_migrations(database_url: str) -> None:
    """`alembic upgrade head`. Blocking: call it before the event loop or in a thread."""
    command.upgrade(alembic_config(database_url), "head")


@contextlib.contextmanager
def calling_on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """Run `callback` on the event loop when SIGTERM or SIGINT arrives, then let the
    server's own handler (uvicorn's) do what it does.

    Uvicorn waits for open connections before it shuts the app down; long-lived event
    streams would keep it waiting forever, so the callback tells them to end.
    """
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous.get(signum)
        if callable(chained):
            chained(signum, frame)

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (an app run inside tests)
            previous.pop(sig, None)
    try:
        yield
    finally:
        for signum, old in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, old)
