"""Command line: `python -m app serve | worker | migrate | users ... | sessions ... | keys ...`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import AppError
from app.core.runtime import (
    StopSignal,
    direct_database_url,
    ensure_database_url,
    release_embedded_database,
    run_migrations,
    stop_signal_raises,
)

T = TypeVar("T")

FOLLOW_ROTATION = (
    "Follow it with: SELECT id, status, progress_done, result, error FROM job"
    " WHERE kind = 'key_rotation' ORDER BY created_at DESC;"
)


def _with_db(
    settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]
) -> T:
    url = ensure_database_url(settings)
    run_migrations(direct_database_url(settings))

    async def main() -> T:
        engine = create_engine(settings, url)
        try:
            return await work(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import time

    import uvicorn

    started = time.monotonic()
    # The embedded database (when DATABASE_URL is unset) stops when the last process that
    # uses it lets go: on SIGTERM and Ctrl+C too, after uvicorn has stopped its workers.
    with stop_signal_raises():
        try:
            url = ensure_database_url(settings)
            where = f"embedded, data in {settings.data_dir}" if "host=/" in url else "DATABASE_URL"
            print(f"Database ready ({where}).")
            run_migrations(direct_database_url(settings))
            workers = "1 worker" if args.workers == 1 else f"{args.workers} workers"
            reason = settings.single_process_reason()
            if args.workers == 1 and reason is not None:
                workers += f" ({reason})"
            print(
                f"Migrations applied. Serving on http://{args.host}:{args.port} with {workers} "
                f"(ready in {time.monotonic() - started:.1f}s; Ctrl+C stops).",
                flush=True,
            )
            uvicorn.run(
                "app.asgi:app",
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_level=settings.log_level.lower(),
                proxy_headers=True,
                timeout_keep_alive=int(settings.http_keep_alive_seconds),
            )
        except (StopSignal, KeyboardInterrupt):
            pass
        finally:
            release_embedded_database()
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """A job worker without the web server (scaling out: docs/scaling.md). It runs until
    SIGTERM or Ctrl+C, then gives its running jobs back to the queue."""
    from app.core.clock import Clock
    from app.core.db import plain_dsn
    from app.core.runtime import calling_on_stop_signal
    from app.events.bus import build_event_bus
    from app.jobs.worker import JobWorker
    from app.models import metadata as _every_table  # noqa: F401  (and the reactions)

    if args.concurrency is not None:
        settings.job_concurrency = args.concurrency

    async def work(sm: async_sessionmaker[AsyncSession]) -> str:
        # Sends the jobs' live events (NOTIFY in their transactions); listens to nothing.
        bus = build_event_bus(
            backend=settings.events_backend,
            direct_dsn=plain_dsn(settings.database_direct_url or settings.database_url or ""),
            redis_url=settings.events_redis_url,
            replay_size=1,
        )
        worker = JobWorker(sessionmaker=sm, bus=bus, clock=Clock(), settings=settings)
        stopping = asyncio.Event()
        try:
            with calling_on_stop_signal(stopping.set):
                worker.start()
                print(
                    f"Job worker running ({settings.job_concurrency} at a time; Ctrl+C stops).",
                    flush=True,
                )
                await stopping.wait()
        finally:
            await worker.stop()
            await bus.stop()
        return "Job worker stopped."

    try:
        print(_with_db(settings, work))
    except KeyboardInterrupt:
        print("Job worker stopped.")
    return 0


def cmd_migrate(_: argparse.Namespace, settings: Settings) -> int:
    run_migrations(direct_database_url(settings))
    print("Database is at the latest migration.")
    return 0


def cmd_create_superuser(args: argparse.Namespace, settings: Settings) -> int:
    from app.auth.service import create_user, promote_to_superuser

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            print("Passwords do not match.", file=sys.stderr)
            return 2

    async def work(sm: async_sessionmaker[AsyncSession]) -> str:
        try:
            user = await create_user(
                sessionmaker=sm,
                settings=settings,
                email=args.email,
                password=password,
                is_superuser=True,
            )
            return f"Created superuser {user.email} ({user.id})."
        except AppError:
            if await promote_to_superuser(sessionmaker=sm, email=args.email):
                return f"{args.email} already existed and is now a superuser."
            raise

    print(_with_db(settings, work))
    return 0


def cmd_sessions(args: argparse.Namespace, settings: Settings) -> int:
    from app.conversations import service
    from app.conversations.tasks import sweep_expired_sessions
    from app.conversations.trash import SYSTEM
    from app.core.clock import Clock
    from app.core.db import commit, plain_dsn
    from app.events.bus import EventBus, build_event_bus

    async def work(sm: async_sessionmaker[AsyncSession]) -> str:
        # Not listening, only sending: running instances tell their users' devices.
        bus = build_event_bus(
            backend=settings.events_backend,
            direct_dsn=plain_dsn(settings.database_direct_url or settings.database_url or ""),
            redis_url=settings.events_redis_url,
            replay_size=1,
        )
        try:
            return await _sessions_action(sm, bus)
        finally:
            await bus.stop()

    async def _sessions_action(sm: async_sessionmaker[AsyncSession], bus: EventBus) -> str:
        if args.action == "count":
            async with sm() as session:
                s = await service.session_stats(session=session)
            return (
                f"active: {s.active}\narchived: {s.archived}\ntotal: {s.total}\n"
                f"messages: {s.messages}\nusers: {s.users}"
            )
        if args.action == "sweep":
            outcome = await sweep_expired_sessions(
                sessionmaker=sm,
                now=Clock().now(),
                ttl_seconds=settings.session_ttl_seconds,
                batch_size=settings.sweep_batch_size,
                pause_seconds=settings.sweep_batch_pause_seconds,
                busy_share=settings.sweep_busy_share,
                trigger="manual",
                bus=bus,
            )
            return f"Archived {outcome.archived} expired sessions."
        if args.action == "clear":
            if not args.session_id:
                raise AppError("Usage: python -m app sessions clear SESSION_ID")
            async with sm() as session:
                deleted = await service.delete_session_any_owner(
                    session=session, session_id=args.session_id, now=Clock().now(), actor=SYSTEM
                )
                await commit(session, bus)
            if not deleted:
                raise AppError(f"No session {args.session_id}.")
            return f"Deleted session {args.session_id} and its messages."
        raise AppError(f"Unknown action {args.action}")

    print(_with_db(settings, work))
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from app.encryption.crypto import KeyFormatError
    from app.keys import service

    if args.action == "generate":
        try:
            print(service.generate_key_line(args.id))
        except KeyFormatError as exc:
            raise AppError(str(exc)) from None
        return 0

    if args.queue:
        from app.core.clock import Clock
        from app.jobs.schedule import queue_key_rotation

        if not settings.encryption_keys:
            raise AppError(
                "ENCRYPTION_KEYS is not set: there is no key to rotate to "
                "(generate one with `python -m app keys generate`)."
            )

        async def queue(sm: async_sessionmaker[AsyncSession]) -> str:
            job_id = await queue_key_rotation(sm, settings, now=Clock().now())
            return f"Key rotation queued as job {job_id}; a job worker runs it.\n{FOLLOW_ROTATION}"

        print(_with_db(settings, queue))
        return 0

    def progress(table: str, done: int) -> None:
        print(f"{table}: {done} rows on the newest key", flush=True)

    async def work(sm: async_sessionmaker[AsyncSession]) -> str:
        report = await service.rotate(
            sessionmaker=sm,
            batch_size=args.batch_size,
            pause_seconds=args.pause,
            on_progress=progress,
        )
        total = sum(report.rewritten.values())
        return f"Done: {total} rows rewritten; every row is on key {report.key_id!r}."

    print(_with_db(settings, work))
    return 0


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Chatkeep server and tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="apply migrations and serve the app")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument(
        "--workers",
        type=int,
        default=settings.resolved_workers(),
        help="web server processes (default: WORKERS; unset, one per core up to 4 where "
        "nothing per process would split, see docs/configuration.md)",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker", help="run a job worker (exports, imports) without the web server"
    )
    worker.add_argument(
        "--concurrency", type=int, default=None, help="jobs at once (default JOB_CONCURRENCY)"
    )
    worker.set_defaults(func=cmd_worker)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)

    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True
    )
    su = users.add_parser(
        "create-superuser", help="create a superuser (or promote an existing user)"
    )
    su.add_argument("email")
    su.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    su.set_defaults(func=cmd_create_superuser)

    sessions = sub.add_parser("sessions", help="inspect and maintain chat sessions")
    sessions.add_argument("action", choices=["count", "sweep", "clear"])
    sessions.add_argument("session_id", nargs="?")
    sessions.set_defaults(func=cmd_sessions)

    keys = sub.add_parser("keys", help="encryption keys (ENCRYPTION_KEYS)")
    keys.add_argument(
        "action",
        choices=["generate", "rotate"],
        help="generate: print a new key line; rotate: move every row onto the first key",
    )
    keys.add_argument("--id", help="generate: the key id (default: a random one)")
    keys.add_argument("--batch-size", type=int, default=500, help="rotate: rows per transaction")
    keys.add_argument(
        "--queue",
        action="store_true",
        help="rotate: queue it as a job for the job workers instead of running it here",
    )
    keys.add_argument(
        "--pause", type=float, default=0.0, help="rotate: seconds to wait between batches"
    )
    keys.set_defaults(func=cmd_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        # A setting that cannot work (a malformed ENCRYPTION_KEYS, a weak SECRET_KEY in
        # production): say which and why, without a traceback.
        for error in exc.errors():
            print(
                f"error: configuration: {error['msg'].removeprefix('Value error, ')}",
                file=sys.stderr,
            )
        return 2
    args = build_parser(settings).parse_args(argv)
    try:
        code: int = args.func(args, settings)
        return code
    except AppError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        release_embedded_database()
