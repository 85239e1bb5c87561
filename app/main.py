"""Builds the application. Nothing else lives here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from app.account.router import router as account_router
from app.admin.router import router as admin_router
from app.assistant.factory import build_assistant, close_assistant
from app.auth.manager import AUTH_COOKIE_NAME
from app.auth.passwords import configure_pool
from app.auth.router import router as auth_router
from app.auth.tokens import SlidingCookieMiddleware
from app.core.clock import Clock
from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker, plain_dsn
from app.core.docs import install_docs
from app.core.errors import UnhandledErrorMiddleware, install_error_handlers
from app.core.logging import configure_logging
from app.core.metrics import MetricsMiddleware
from app.core.runtime import (
    calling_on_stop_signal,
    direct_database_url,
    ensure_database_url,
    run_migrations,
)
from app.core.security import BodySizeLimitMiddleware, CsrfMiddleware, SecurityHeadersMiddleware
from app.core.validation import TextInputMiddleware
from app.drafts.router import router as assistant_router
from app.events.bus import EventBus, build_event_bus
from app.events.router import router as events_router
from app.events.tasks import running_stream_sign_in_check
from app.exports.downloads import DownloadSlots, purge_stale_workspaces
from app.exports.router import router as exports_router
from app.health.router import router as health_router
from app.health.service import DatabaseGauges
from app.history.router import activity_router
from app.history.router import router as history_router
from app.history.session_router import router as conversations_router
from app.imports.router import router as imports_router
from app.jobs.router import router as jobs_router
from app.jobs.worker import JobWorker, running_job_worker
from app.mail.service import Mailer
from app.models import metadata as _every_table  # noqa: F401  (and the domains' reactions)
from app.openai_api.errors import OpenAIErrorMiddleware
from app.openai_api.router import completions_router as openai_completions_router
from app.openai_api.router import router as openai_router
from app.ratelimit.setup import install_rate_limits
from app.sharing.router import public_router as shared_router
from app.sharing.router import router as sharing_router
from app.turns.admission import TurnAdmission
from app.turns.router import chat_router
from app.turns.router import router as turns_router
from app.turns.runner import TurnRunner
from app.turns.tasks import running_stale_turn_check
from app.usage.router import router as usage_router
from app.web.assets import STATIC_PREFIX, static_files
from app.web.router import router as web_router
from app.web.router import session_router

API_DESCRIPTION = """
Server-side AI-chat conversations per signed-in user, kept in PostgreSQL.

Sign in with `POST /auth/jwt/login` and send `Authorization: Bearer <token>`, or use the
cookie login from the web page (state-changing cookie requests need `X-CSRF-Token`).
Errors are `application/problem+json`.
"""


def background_jobs(
    app: FastAPI, settings: Settings, *, bus: EventBus, sweeper_on: bool
) -> list[AbstractAsyncContextManager[object]]:
    """Every background job a process runs, in one list. Each process checks for stale
    turns and for ended sign-ins of its open streams (its own streams and turns, within
    seconds); JOB_WORKER_ENABLED governs the job worker: the queue's exports and imports,
    and the scheduled runs (`app.jobs.schedule`: the sweep of idle sessions, unless
    SWEEPER_ENABLED or `run_sweeper` is off, and every purge), which it queues once per
    interval across all processes (SCHEDULED_JOBS_ENABLED) and runs."""
    sessionmaker, clock = app.state.sessionmaker, app.state.clock
    jobs: list[AbstractAsyncContextManager[object]] = [
        running_stale_turn_check(
            sessionmaker=sessionmaker,
            bus=bus,
            clock=clock,
            stale_seconds=settings.turn_stale_seconds,
        ),
        running_stream_sign_in_check(
            hub=bus.hub,
            sessionmaker=sessionmaker,
            clock=clock,
            idle_seconds=settings.sign_in_idle_days * 86_400,
            interval_seconds=settings.events_sign_in_check_seconds,
        ),
    ]
    if settings.job_worker_enabled:
        worker = JobWorker(
            sessionmaker=sessionmaker,
            bus=bus,
            clock=clock,
            # The sweep is one of the scheduled runs this worker queues (and may take).
            settings=settings.model_copy(update={"sweeper_enabled": sweeper_on}),
            mailer=lambda: app.state.mailer,
        )
        app.state.jobs = worker
        jobs.append(running_job_worker(worker))
    return jobs


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    migrate: bool = True,
    run_sweeper: bool | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = ensure_database_url(settings)
        if migrate:
            await asyncio.to_thread(run_migrations, direct_database_url(settings))
        engine = create_engine(settings, url)
        app.state.engine = engine
        # Files of downloads a killed process was making.
        await asyncio.to_thread(purge_stale_workspaces, settings.data_dir)
        app.state.sessionmaker = create_sessionmaker(engine)
        bus = build_event_bus(
            backend=settings.events_backend,
            direct_dsn=plain_dsn(settings.database_direct_url or url),
            redis_url=settings.events_redis_url,
            replay_size=settings.events_replay_buffer,
        )
        app.state.events = bus
        runner = TurnRunner(
            sessionmaker=app.state.sessionmaker,
            bus=bus,
            clock=app.state.clock,
            max_in_flight=settings.max_turns_in_flight,
            timeout_seconds=settings.llm_timeout_seconds,
            checkpoint_seconds=settings.turn_checkpoint_seconds,
            max_reply_chars=settings.max_reply_chars,
        )
        app.state.turns = runner
        sweeper_on = settings.sweeper_enabled if run_sweeper is None else run_sweeper

        def drain() -> None:
            bus.hub.drain()
            runner.wake_followers()

        try:
            await bus.start()
            await runner.start_checkpoints()
            async with contextlib.AsyncExitStack() as jobs:
                jobs.enter_context(calling_on_stop_signal(drain))
                for job in background_jobs(app, settings, bus=bus, sweeper_on=sweeper_on):
                    await jobs.enter_async_context(job)
                yield
        finally:
            drain()
            await runner.shutdown(settings.turn_shutdown_grace_seconds)
            await bus.stop()
            await close_assistant(app.state.assistant)
            await engine.dispose()

    app = FastAPI(
        title="Chatkeep",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock or Clock()
    app.state.assistant = build_assistant(settings)
    app.state.turn_admission = TurnAdmission(
        slots=settings.turn_open_slots or settings.db_pool_size,
        wait_seconds=settings.turn_open_wait_seconds,
    )
    app.state.download_slots = DownloadSlots(limit=settings.download_max_per_user)
    app.state.database_gauges = DatabaseGauges(
        refresh_seconds=settings.metrics_database_refresh_seconds
    )
    app.state.mailer = Mailer(
        smtp_url=settings.smtp_url,
        sender=settings.mail_from,
        outbox=settings.data_dir / "outbox",
        timeout_seconds=settings.mail_timeout_seconds,
    )
    configure_pool(settings.password_hash_threads)

    install_error_handlers(app)
    install_docs(app)
    install_rate_limits(app, settings)
    # Before auth's: its /users/me must win over the superusers' /users/{id}.
    app.include_router(account_router)
    app.include_router(usage_router)
    app.include_router(auth_router)
    app.include_router(history_router)
    app.include_router(activity_router)
    app.include_router(chat_router)
    app.include_router(turns_router)
    app.include_router(conversations_router)
    app.include_router(sharing_router)
    app.include_router(shared_router)
    app.include_router(events_router)
    app.include_router(exports_router)
    app.include_router(imports_router)
    app.include_router(jobs_router)
    app.include_router(openai_completions_router)
    app.include_router(openai_router)
    app.include_router(assistant_router)
    app.include_router(admin_router)
    app.include_router(health_router)
    app.include_router(session_router)
    app.include_router(web_router)
    app.mount(STATIC_PREFIX, static_files(), name="static")

    # Added inside-out: the last one added runs first.
    app.add_middleware(TextInputMiddleware, exempt_body_prefixes=("/api/import",))
    app.add_middleware(
        CsrfMiddleware,
        auth_cookie=AUTH_COOKIE_NAME,
        trusted_origins=settings.trusted_origins,
        secure=settings.cookie_secure,
    )
    app.add_middleware(
        SlidingCookieMiddleware, cookie_name=AUTH_COOKIE_NAME, secure=settings.cookie_secure
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        exempt_prefixes=("/api/import",),
    )
    app.add_middleware(
        UnhandledErrorMiddleware, retry_after_seconds=settings.db_retry_after_seconds
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts_max_age=settings.hsts_max_age_seconds if settings.cookie_secure else None,
    )
    # `/v1` answers errors in OpenAI's shape, whichever layer above raised them.
    app.add_middleware(OpenAIErrorMiddleware)
    app.add_middleware(MetricsMiddleware)
    return app
