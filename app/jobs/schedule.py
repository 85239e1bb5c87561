"""Scheduled runs: the instance's own periodic work, on the job queue.

A schedule is a job kind and an interval. Time is cut into intervals from the epoch; for
the interval `now` falls in, each job worker (any process) queues one run of each kind,
a `job` row with no owner and `scheduled_for` = the interval's start, with
`INSERT ... ON CONFLICT DO NOTHING` on the unique key (kind, scheduled_for). However many
processes try, one row is written per interval, and one worker runs it (the queue's
`FOR UPDATE SKIP LOCKED`). A run that dies with its worker is taken again like any job;
every run here is safe to repeat (it deletes what is due, in batches).

Key rotation runs the same way, but only when an operator queues it
(`queue_key_rotation`, from `python -m app keys rotate --queue`): rows may move onto the
first key of ENCRYPTION_KEYS only once every instance knows that key, which the app cannot
tell by itself. Its `scheduled_for` is the moment it was queued.

Runs of a schedule: SELECT kind, scheduled_for, status, result FROM job WHERE user_id IS NULL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.repository import AccountEventOperatorRepository, SignInOperatorRepository
from app.conversations.retention import apply_retention
from app.conversations.tasks import purge_trash, sweep_off_the_loop
from app.core.config import Settings
from app.core.db import bound_url, unit_of_work
from app.core.errors import AppError
from app.events.bus import EventBus
from app.jobs.models import JobKind
from app.jobs.repository import JobOperatorRepository
from app.keys.service import rotate
from app.sharing.repository import ShareOperatorRepository
from app.turns.repository import TurnOperatorRepository

logger = logging.getLogger("app.jobs")

# Which process queued a run (`params.queuedBy`) and ran it (`result.ranBy`).
PROCESS = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ScheduledRun:
    """What a scheduled run is given: `now` is the time its worker took it;
    `on_progress(done)` tells the worker how far a long run is (its heartbeat writes it)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus | None
    settings: Settings
    now: datetime
    on_progress: Callable[[int], None] | None = None


Runner = Callable[[ScheduledRun], Awaitable[int]]


def interval_start(now: datetime, interval_seconds: float) -> datetime:
    """The start of the interval `now` falls in, counting intervals from the epoch."""
    seconds = now.timestamp()
    return datetime.fromtimestamp(seconds - seconds % interval_seconds, tz=UTC)


def schedules(settings: Settings) -> list[tuple[JobKind, float]]:
    """Every scheduled kind and its interval, in seconds."""
    purge = settings.purge_interval_seconds
    sweep = [(JobKind.SESSION_SWEEP, settings.sweep_interval_seconds)]
    return [
        *(sweep if settings.sweeper_enabled else []),
        (JobKind.JOB_PURGE, settings.job_purge_interval_seconds),
        (JobKind.TRASH_PURGE, purge),
        (JobKind.SHARE_LINK_PURGE, purge),
        (JobKind.IDEMPOTENCY_PURGE, purge),
        (JobKind.SIGN_IN_PURGE, purge),
        (JobKind.ACCOUNT_EVENT_PURGE, purge),
        (JobKind.RETENTION, settings.retention_interval_seconds),
    ]


async def _batches(run: ScheduledRun, one: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Runs `one` (a batch) in transactions of its own until a batch comes back short."""
    total, batch = 0, run.settings.purge_batch_size
    while True:
        async with unit_of_work(run.sessionmaker, run.bus) as session:
            n = await one(session)
        total += n
        if n < batch:
            return total
        await asyncio.sleep(0)


async def purge_jobs(run: ScheduledRun) -> int:
    """Jobs (and their results) past `expires_at`."""
    batch = run.settings.purge_batch_size
    return await _batches(run, lambda s: JobOperatorRepository(s).purge(now=run.now, batch=batch))


async def purge_trashed(run: ScheduledRun) -> int:
    """Trashed conversations whose `purge_at` passed (TRASH_RETENTION_DAYS)."""
    return await purge_trash(
        sessionmaker=run.sessionmaker,
        now=run.now,
        batch_size=run.settings.purge_batch_size,
        bus=run.bus,
    )


async def purge_share_links(run: ScheduledRun) -> int:
    """Share links expired more than SHARE_LINK_PURGE_GRACE_DAYS ago."""
    before = run.now - timedelta(days=run.settings.share_link_purge_grace_days)
    batch = run.settings.purge_batch_size
    return await _batches(
        run, lambda s: ShareOperatorRepository(s).delete_ended(before, batch=batch)
    )


async def purge_idempotency_keys(run: ScheduledRun) -> int:
    """Idempotency keys of turns started more than IDEMPOTENCY_KEY_TTL_HOURS ago."""
    before = run.now - timedelta(hours=run.settings.idempotency_key_ttl_hours)
    batch = run.settings.purge_batch_size
    return await _batches(
        run,
        lambda s: TurnOperatorRepository(s).forget_idempotency_keys(before=before, batch=batch),
    )


async def purge_sign_ins(run: ScheduledRun) -> int:
    """Sign-ins ended or expired more than SIGN_IN_PURGE_AFTER_HOURS ago."""
    cutoff = run.now - timedelta(hours=run.settings.sign_in_purge_after_hours)
    batch = run.settings.purge_batch_size
    return await _batches(
        run, lambda s: SignInOperatorRepository(s).delete_dead(cutoff, batch=batch)
    )


async def purge_account_events(run: ScheduledRun) -> int:
    """Account audit rows older than ACCOUNT_EVENT_RETENTION_DAYS."""
    before = run.now - timedelta(days=run.settings.account_event_retention_days)
    batch = run.settings.purge_batch_size
    return await _batches(
        run, lambda s: AccountEventOperatorRepository(s).delete_before(before, batch=batch)
    )


async def retention(run: ScheduledRun) -> int:
    """Conversations past their owner's retention (or RETENTION_MAX_DAYS), to the trash."""
    return await apply_retention(
        sessionmaker=run.sessionmaker,
        now=run.now,
        maximum=run.settings.retention_max_days,
        trash_days=run.settings.trash_retention_days,
        batch_size=run.settings.purge_batch_size,
        skip_trash=run.settings.retention_skip_trash,
        bus=run.bus,
    )


async def sweep_sessions(run: ScheduledRun) -> int:
    """Sessions idle longer than SESSION_TTL_SECONDS archived (temporary ones deleted),
    off the event loop serving requests; returns how many."""
    outcome = await sweep_off_the_loop(
        settings=run.settings, url=bound_url(run.sessionmaker), now=run.now, bus=run.bus
    )
    return outcome.archived + outcome.deleted_temporary


async def rotate_keys(run: ScheduledRun) -> int:
    """Every sealed row (and every row from before encryption) onto the first key of
    ENCRYPTION_KEYS, in transactions of PURGE_BATCH_SIZE rows (`app.keys.service.rotate`);
    returns how many rows it rewrote. Safe to repeat: a new run finds only the rows still
    to do."""
    rewritten: dict[str, int] = {}

    def progress(table: str, done: int) -> None:
        rewritten[table] = done
        if run.on_progress is not None:
            run.on_progress(sum(rewritten.values()))

    report = await rotate(
        sessionmaker=run.sessionmaker,
        batch_size=run.settings.purge_batch_size,
        on_progress=progress,
    )
    return sum(report.rewritten.values())


async def queue_key_rotation(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> uuid.UUID:
    """Queues one run of key rotation for any job worker to take; returns its id."""
    async with unit_of_work(sessionmaker) as session:
        job_id = await JobOperatorRepository(session).enqueue_scheduled(
            JobKind.KEY_ROTATION.value,
            scheduled_for=now,
            now=now,
            expires_at=now + timedelta(hours=settings.job_result_ttl_hours),
            params={"queuedBy": PROCESS},
        )
    if job_id is None:  # pragma: no cover - two in the same microsecond
        raise AppError("A key rotation was queued at this very moment.", code="job_queued")
    return job_id


RUNNERS: dict[str, Runner] = {
    JobKind.KEY_ROTATION: rotate_keys,
    JobKind.RETENTION: retention,
    JobKind.SESSION_SWEEP: sweep_sessions,
    JobKind.JOB_PURGE: purge_jobs,
    JobKind.TRASH_PURGE: purge_trashed,
    JobKind.SHARE_LINK_PURGE: purge_share_links,
    JobKind.IDEMPOTENCY_PURGE: purge_idempotency_keys,
    JobKind.SIGN_IN_PURGE: purge_sign_ins,
    JobKind.ACCOUNT_EVENT_PURGE: purge_account_events,
}


async def queue_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime,
    skip: dict[str, datetime] | None = None,
) -> list[JobKind]:
    """Queues the run of every schedule for the interval `now` falls in, unless one was
    queued already (by any process); returns the kinds this call queued. `skip` holds the
    interval each kind was last handled for by the caller, so a process tries each
    interval once; it is updated."""
    queued: list[JobKind] = []
    expires_at = now + timedelta(hours=settings.job_result_ttl_hours)
    async with unit_of_work(sessionmaker) as session:
        queue = JobOperatorRepository(session)
        for kind, interval in schedules(settings):
            start = interval_start(now, interval)
            if skip is not None and skip.get(kind) == start:
                continue
            if await queue.enqueue_scheduled(
                kind.value,
                scheduled_for=start,
                now=now,
                expires_at=expires_at,
                params={"queuedBy": PROCESS},
            ):
                queued.append(kind)
    if skip is not None:
        for kind, interval in schedules(settings):
            skip[kind] = interval_start(now, interval)
    return queued
