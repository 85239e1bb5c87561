"""The sweeper: archives sessions idle longer than the TTL, deletes temporary ones for good
once idle as long; and the trash purge.

A temporary conversation is not archived: the sweep deletes it with its messages, drafts,
turns and images, leaving no trash, no audit row and no `session` event (it never was in
the history other devices show).

Archiving never deletes. The purge deletes, for good, conversations that have been in the
trash for TRASH_RETENTION_DAYS (their `purge_at` passed), with their images; it is a
scheduled run of the job queue (`app.jobs.schedule`), which calls `purge_trash`.

Exactly once per interval across all processes and instances: the sweep is a scheduled
run of the job queue (`app.jobs.schedule`), queued once per SWEEP_INTERVAL_SECONDS
whichever process tries first, and taken by one job worker. The sweep itself works in
bounded batches, each its own short transaction, skipping rows a chat turn holds
(FOR UPDATE SKIP LOCKED): no giant lock, and a manual sweep running at the same time
never archives a row twice.

Off the serving loop, and paced: the scheduled sweep runs in a thread of its own, on its
own event loop and its own small pool of connections (`sweep_off_the_loop`), so its Python
work never holds up a request; and after each batch it pauses in proportion to the time
the batch took (SWEEP_BUSY_SHARE), so a backlog of a million sessions is worked through
without taking the database's CPU from the chat turns.

The purge locks the rows it deletes (SKIP LOCKED), so each purged conversation is deleted
and recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.conversations import trash
from app.conversations.models import AuditAction, SweepRun
from app.conversations.repository import ConversationOperatorRepository
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, unit_of_work
from app.core.threads import run_in_own_loop
from app.events.bus import BusFromAnotherLoop, EventBus, user_event

logger = logging.getLogger("app.sweeper")

SWEEPER_NAME = "sessions"
RUNNER = f"{socket.gethostname()}:{os.getpid()}"


def pause_after(elapsed: float, *, pause_seconds: float, busy_share: float) -> float:
    """How long to rest after a batch that took `elapsed` seconds, so batches fill at most
    `busy_share` of the sweep's time (and it rests at least `pause_seconds`)."""
    if busy_share >= 1:
        return pause_seconds
    return max(pause_seconds, elapsed * (1 - busy_share) / busy_share)


@dataclass(frozen=True)
class SweepOutcome:
    ran: bool
    archived: int
    batches: int
    deleted_temporary: int = 0


async def sweep_expired_sessions(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    ttl_seconds: int,
    batch_size: int,
    trigger: str,
    pause_seconds: float = 0.0,
    busy_share: float = 1.0,
    bus: EventBus | None = None,
) -> SweepOutcome:
    """Archive every session idle since before `now - ttl`. With a `bus`, every device of
    each owner hears of it (`session` events, sent with each batch's commit). Between
    batches it rests `pause_after` their duration (`busy_share` 1: only `pause_seconds`)."""
    cutoff = now - timedelta(seconds=ttl_seconds)
    async with unit_of_work(sessionmaker) as session:
        run = SweepRun(started_at=now, trigger=trigger, runner=RUNNER)
        session.add(run)
    archived = 0
    batches = 0
    while True:
        started = time.perf_counter()
        async with unit_of_work(sessionmaker, bus) as session:
            rows = await ConversationOperatorRepository(session).archive_expired(
                cutoff=cutoff, batch=batch_size, now=now
            )
            ids = [session_id for session_id, _ in rows]
            if bus is not None:
                bus.stage(
                    session,
                    *(
                        user_event(owner, "session", sessionId=session_id, change="archived")
                        for session_id, owner in rows
                    ),
                )
        batches += 1
        archived += len(ids)
        if len(ids) < batch_size:
            break
        # A rest between batches keeps chat turns' latency steady during a big sweep.
        elapsed = time.perf_counter() - started
        await asyncio.sleep(
            pause_after(elapsed, pause_seconds=pause_seconds, busy_share=busy_share)
        )
    deleted = await _delete_expired_temporary(
        sessionmaker=sessionmaker,
        cutoff=cutoff,
        batch_size=batch_size,
        pause_seconds=pause_seconds,
        busy_share=busy_share,
    )
    async with unit_of_work(sessionmaker) as session:
        await session.execute(
            sa.update(SweepRun)
            .where(col(SweepRun.id) == run.id)
            .values(finished_at=sa.func.now(), archived_count=archived)
        )
    logger.info(
        "sweep (%s) archived %d sessions in %d batches, deleted %d temporary ones",
        trigger,
        archived,
        batches,
        deleted,
    )
    return SweepOutcome(ran=True, archived=archived, batches=batches, deleted_temporary=deleted)


async def _delete_expired_temporary(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    cutoff: datetime,
    batch_size: int,
    pause_seconds: float,
    busy_share: float,
) -> int:
    """Deletes for good, in batches, every temporary conversation idle since `cutoff`."""
    deleted = 0
    while True:
        started = time.perf_counter()
        async with unit_of_work(sessionmaker) as session:
            removed = await ConversationOperatorRepository(session).delete_expired_temporary(
                cutoff=cutoff, batch=batch_size
            )
        deleted += len(removed)
        if len(removed) < batch_size:
            return deleted
        elapsed = time.perf_counter() - started
        await asyncio.sleep(
            pause_after(elapsed, pause_seconds=pause_seconds, busy_share=busy_share)
        )


async def sweep_now(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    bus: EventBus | None = None,
) -> SweepOutcome:
    """A sweep at once, outside the schedule, with the configured TTL and batches."""
    return await sweep_expired_sessions(
        sessionmaker=sessionmaker,
        now=now,
        ttl_seconds=settings.session_ttl_seconds,
        batch_size=settings.sweep_batch_size,
        pause_seconds=settings.sweep_batch_pause_seconds,
        busy_share=settings.sweep_busy_share,
        trigger="manual",
        bus=bus,
    )


async def purge_trash(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    now: datetime,
    batch_size: int,
    pause_seconds: float = 0.0,
    bus: EventBus | None = None,
) -> int:
    """Deletes for good every trashed conversation whose `purge_at` has passed, with its
    images, in batches that each commit on their own; rows another purge holds are
    skipped, so none is purged (or recorded) twice. Returns how many."""
    purged = 0
    while True:
        async with unit_of_work(sessionmaker, bus) as session:
            operator = ConversationOperatorRepository(session)
            ids = await operator.due_for_purge(now=now, batch=batch_size)
            removed = await trash.delete_conversations(
                session=session,
                repository=operator,
                ids=ids,
                now=now,
                actor=trash.SYSTEM,
                action=AuditAction.PURGE,
            )
        purged += len(removed)
        if len(ids) < batch_size:
            break
        await asyncio.sleep(pause_seconds)
    if purged:
        logger.info("trash purge deleted %d conversations", purged)
    return purged


# The sweep's own connections: one at a time, plus one spare.
SWEEP_POOL = {"db_pool_size": 1, "db_max_overflow": 1}


async def sweep_off_the_loop(
    *, settings: Settings, url: str, now: datetime, bus: EventBus | None = None
) -> SweepOutcome:
    """The scheduled sweep, as its job runs it: in a thread of its own, on an event loop
    and connections made there (a pool belongs to the loop that made it), paced by
    SWEEP_BUSY_SHARE; each batch's events still leave through the process's `bus`."""
    home = asyncio.get_running_loop()

    async def sweep() -> SweepOutcome:
        engine = create_engine(settings.model_copy(update=SWEEP_POOL), url)
        try:
            return await sweep_expired_sessions(
                sessionmaker=create_sessionmaker(engine),
                now=now,
                ttl_seconds=settings.session_ttl_seconds,
                batch_size=settings.sweep_batch_size,
                trigger="schedule",
                pause_seconds=settings.sweep_batch_pause_seconds,
                busy_share=settings.sweep_busy_share,
                bus=None if bus is None else BusFromAnotherLoop(bus, home),
            )
        finally:
            await engine.dispose()

    return await run_in_own_loop(sweep, name="sweeper")
