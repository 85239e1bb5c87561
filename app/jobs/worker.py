"""The job worker: takes queued jobs from PostgreSQL and runs them.

Every app process runs one (JOB_WORKER_ENABLED, the default); `python -m app worker`
runs one without the web server, for scaling out. Workers in any number of processes
share the one queue: a job is taken with `FOR UPDATE SKIP LOCKED`, so each is taken by
one worker, and nothing but PostgreSQL is needed (no broker; PgBouncer in transaction
mode is fine, the worker polls and holds no session state).

A worker runs at most JOB_CONCURRENCY jobs at once. It looks for work every
JOB_POLL_SECONDS, at once when a job was started in its own process. While a job runs,
the worker writes its heartbeat and progress (its own short transactions, at most once a
second); a job whose heartbeat is older than JOB_STALE_SECONDS lost its worker (`kill -9`,
a crash) and is taken again by any worker, up to JOB_MAX_ATTEMPTS tries, then failed as
`job_interrupted`. A worker stopped on purpose gives its jobs back to the queue.

Each worker also queues the scheduled runs (app/jobs/schedule.py: the purges, expired jobs
among them) when their interval comes, once per interval across all processes, and runs
them like any job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import unit_of_work
from app.core.errors import AppError
from app.core.metrics import MAIL_MESSAGES, PURGED_ROWS, SCHEDULED_RUNS
from app.events.bus import EventBus, user_event
from app.exports.service import pdf_budget
from app.imports.limits import ImportLimits
from app.jobs.models import JobKind, JobStatus
from app.jobs.repository import Claimed, JobOperatorRepository
from app.jobs.schedule import PROCESS, ScheduledRun, queue_due
from app.jobs.schedule import RUNNERS as SCHEDULED
from app.jobs.service import RUNNERS, JobContext, JobLostError, Progress, expiry
from app.mail.repository import MailOutbox, OutgoingMail
from app.mail.service import Mailer, is_permanent

logger = logging.getLogger("app.jobs")

# Progress is written at most this often (with the heartbeat, when it moved).
PROGRESS_SECONDS = 1.0
PURGE_BATCH = 1000


# What a scheduled run's count is, when not rows removed (`result` holds it by this name).
_DONE_WORDS = {JobKind.KEY_ROTATION.value: "rewritten", JobKind.SESSION_SWEEP.value: "archived"}


class JobWorker:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus | None,
        clock: Clock,
        settings: Settings,
        data_dir: Path | None = None,
        mailer: Callable[[], Mailer] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        # Looked up for each message: the app's mailer (tests give each test its own).
        own = Mailer.from_settings(settings)
        self.mailer = mailer or (lambda: own)
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.data_dir = data_dir or settings.data_dir
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.running: dict[uuid.UUID, asyncio.Task[None]] = {}
        # The interval each scheduled kind was last queued (or found queued) for.
        self._scheduled: dict[str, datetime] = {}

    # ------------------------------------------------------------------ lifecycle

    def wake(self) -> None:
        """A job was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        for n in range(self.settings.job_concurrency):
            self._tasks.append(asyncio.create_task(self._take_loop(), name=f"job-worker-{n}"))
        if self.settings.scheduled_jobs_enabled:
            self._tasks.append(asyncio.create_task(self._schedule_loop(), name="job-schedule"))

    async def stop(self) -> None:
        """Stops taking jobs; the running ones are cancelled and given back to the queue."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # ------------------------------------------------------------------ taking jobs

    async def _take_loop(self) -> None:
        while True:
            try:
                claimed = await self.take()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down; try again next poll
                logger.warning("could not take a job, will retry: %s", exc)
                claimed = None
            if claimed is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.job_poll_seconds)
                continue
            await self.run(claimed)

    async def take(self) -> Claimed | None:
        """Fails the jobs that lost their worker too often, then takes the next one."""
        now = self.clock.now()
        stale_before = now - timedelta(seconds=self.settings.job_stale_seconds)
        async with unit_of_work(self.sessionmaker, self.bus) as db:
            queue = JobOperatorRepository(db)
            for job_id, user_id in await queue.give_up_stale(
                stale_before=stale_before,
                max_attempts=self.settings.job_max_attempts,
                now=now,
                expires_at=expiry(now, self.settings.job_result_ttl_hours),
            ):
                self._stage(db, user_id, job_id, JobStatus.FAILED, 0, None)
            claimed = await queue.claim(now=now, stale_before=stale_before)
            # A mail is no job of its addressee's: no live event for it.
            if claimed is not None and claimed.kind != JobKind.MAIL.value:
                self._stage(db, claimed.user_id, claimed.id, JobStatus.RUNNING, 0, None)
        return claimed

    def _stage(
        self,
        db: AsyncSession,
        user_id: uuid.UUID | None,
        job_id: uuid.UUID,
        status: JobStatus,
        done: int,
        total: int | None,
    ) -> None:
        if self.bus is not None and user_id is not None:
            self.bus.stage(
                db,
                user_event(
                    user_id,
                    "job",
                    jobId=str(job_id),
                    status=status.value,
                    done=done,
                    total=total,
                ),
            )

    # ------------------------------------------------------------------ running one

    async def run(self, claimed: Claimed) -> None:
        if claimed.user_id is None:
            await self.run_scheduled(claimed)
            return
        if claimed.kind == JobKind.MAIL.value:
            await self.run_mail(claimed, claimed.user_id)
            return
        progress = Progress()
        ctx = JobContext(
            sessionmaker=self.sessionmaker,
            hooks=self.bus,
            user_id=claimed.user_id,
            job_id=claimed.id,
            attempt=claimed.attempt,
            params=claimed.params,
            data_dir=self.data_dir,
            progress=progress,
            now=self.clock.now,
            ttl_hours=self.settings.job_result_ttl_hours,
            pdf_budget=pdf_budget(self.settings),
            import_limits=ImportLimits.from_settings(self.settings),
        )
        beating = asyncio.create_task(self._beat(claimed, progress), name=f"job-beat-{claimed.id}")
        try:
            runner = RUNNERS.get(claimed.kind)
            if runner is None:
                raise AppError(f"Unknown job kind {claimed.kind!r}.", code="job_unknown")
            await runner(ctx, self.bus)
        except JobLostError:
            logger.warning("job %s was taken by another worker; its result is dropped", claimed.id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._give_back(claimed))
            raise
        except AppError as exc:
            await self._fail(claimed, {"code": exc.code, "detail": exc.detail}, progress)
        except Exception:
            logger.exception("job %s (%s) failed", claimed.id, claimed.kind)
            await self._fail(
                claimed,
                {"code": "job_failed", "detail": "The job failed. Please try again."},
                progress,
            )
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def run_scheduled(self, claimed: Claimed) -> None:
        """Runs a scheduled run (a purge, key rotation) and records how many rows it
        removed (or rewrote)."""
        progress = Progress()
        beating = asyncio.create_task(self._beat(claimed, progress), name=f"job-beat-{claimed.id}")
        try:
            runner = SCHEDULED.get(claimed.kind)
            if runner is None:
                raise AppError(f"Unknown job kind {claimed.kind!r}.", code="job_unknown")
            now = self.clock.now()
            removed = await runner(
                ScheduledRun(
                    sessionmaker=self.sessionmaker,
                    bus=self.bus,
                    settings=self.settings,
                    now=now,
                    on_progress=lambda done: progress.set(done, None),
                )
            )
            # Rotation rewrites rows and the sweep archives them; the rest remove rows.
            done_word = _DONE_WORDS.get(claimed.kind, "removed")
            if done_word == "removed":
                PURGED_ROWS.labels(claimed.kind).inc(removed)
            async with unit_of_work(self.sessionmaker, self.bus) as db:
                await JobOperatorRepository(db).finish(
                    claimed.id,
                    claimed.attempt,
                    status=JobStatus.DONE,
                    now=self.clock.now(),
                    expires_at=expiry(self.clock.now(), self.settings.job_result_ttl_hours),
                    result={done_word: removed, "ranBy": PROCESS},
                    done=removed,
                    total=removed,
                )
            SCHEDULED_RUNS.labels(claimed.kind, "done").inc()
            if removed:
                logger.info("%s: %s %d rows", claimed.kind, done_word, removed)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._give_back(claimed))
            raise
        except AppError as exc:
            SCHEDULED_RUNS.labels(claimed.kind, "failed").inc()
            await self._fail(claimed, {"code": exc.code, "detail": exc.detail}, progress)
        except Exception:
            logger.exception("scheduled run %s (%s) failed", claimed.id, claimed.kind)
            SCHEDULED_RUNS.labels(claimed.kind, "failed").inc()
            await self._fail(
                claimed,
                {"code": "job_failed", "detail": "The scheduled run failed."},
                progress,
            )
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def run_mail(self, claimed: Claimed, user_id: uuid.UUID) -> None:
        """Sends a message of the mail outbox: up to MAIL_MAX_TRIES tries, waiting
        MAIL_RETRY_SECONDS after the first failure and twice as long after each next one,
        then records it sent (`done`) or `failed` with its reason, kept MAIL_KEEP_MINUTES.

        Once `done` is committed the row is never taken again, so a worker that dies after
        that sends nothing twice. A worker that dies between the server's acceptance and
        that commit leaves the row `running`; it goes stale and is taken again, and the
        message is sent a second time (at least once, not exactly once)."""
        beating = asyncio.create_task(
            self._beat(claimed, Progress()), name=f"job-beat-{claimed.id}"
        )
        try:
            async with self.sessionmaker() as db:
                mail = MailOutbox(db, user_id).open(claimed.id, claimed.params)
            tries, reason = await self._send_with_retries(claimed, mail)
            now = self.clock.now()
            keep = now + timedelta(minutes=self.settings.mail_keep_minutes)
            async with unit_of_work(self.sessionmaker, self.bus) as db:
                ended = await JobOperatorRepository(db).finish(
                    claimed.id,
                    claimed.attempt,
                    status=JobStatus.DONE if reason is None else JobStatus.FAILED,
                    now=now,
                    expires_at=keep,
                    result={"tries": tries} if reason is None else None,
                    error=None
                    if reason is None
                    else {"code": "mail_undeliverable", "detail": reason},
                )
            if not ended:
                logger.warning("mail %s was taken by another worker", claimed.id)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._give_back(claimed))
            raise
        except Exception:
            logger.exception("mail %s could not be sent", claimed.id)
            await self._fail(
                claimed,
                {"code": "mail_failed", "detail": "The mail could not be sent."},
                Progress(),
                keep=timedelta(minutes=self.settings.mail_keep_minutes),
            )
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _send_with_retries(
        self, claimed: Claimed, mail: OutgoingMail
    ) -> tuple[int, str | None]:
        """(tries made, None when sent or the last failure's reason)."""
        tries = self.settings.mail_max_tries
        wait = self.settings.mail_retry_seconds
        for n in range(1, tries + 1):
            try:
                await self.mailer().send(mail)
                return n, None
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                last = n == tries or is_permanent(exc)
                MAIL_MESSAGES.labels(mail.kind, "failed" if last else "retried").inc()
                if last:
                    logger.error(
                        "mail %s (%s) not delivered after %d tries: mail_undeliverable: %s",
                        claimed.id,
                        mail.kind,
                        n,
                        reason,
                    )
                    return n, reason
                logger.warning(
                    "mail %s (%s): try %d of %d failed, again in %.1f s: %s",
                    claimed.id,
                    mail.kind,
                    n,
                    tries,
                    wait,
                    reason,
                )
            await asyncio.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")

    async def _beat(self, claimed: Claimed, progress: Progress) -> None:
        beat_every = self.settings.job_heartbeat_seconds
        tick = min(PROGRESS_SECONDS, beat_every)
        written: tuple[int, int | None] = (0, None)
        since_beat = 0.0
        while True:
            await asyncio.sleep(tick)
            since_beat += tick
            now_progress = (progress.done, progress.total)
            if now_progress == written and since_beat < beat_every:
                continue
            try:
                async with unit_of_work(self.sessionmaker, self.bus) as db:
                    ours = await JobOperatorRepository(db).beat(
                        claimed.id,
                        claimed.attempt,
                        now=self.clock.now(),
                        done=now_progress[0],
                        total=now_progress[1],
                    )
                    if ours and now_progress != written:
                        self._stage(
                            db, claimed.user_id, claimed.id, JobStatus.RUNNING, *now_progress
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("job %s: heartbeat failed, will retry: %s", claimed.id, exc)
                continue
            written, since_beat = now_progress, 0.0
            if not ours:
                logger.warning("job %s is no longer this worker's", claimed.id)
                return

    async def _fail(
        self,
        claimed: Claimed,
        error: dict[str, str],
        progress: Progress,
        keep: timedelta | None = None,
    ) -> None:
        now = self.clock.now()
        try:
            async with unit_of_work(self.sessionmaker, self.bus) as db:
                if await JobOperatorRepository(db).finish(
                    claimed.id,
                    claimed.attempt,
                    status=JobStatus.FAILED,
                    now=now,
                    expires_at=now + keep
                    if keep is not None
                    else expiry(now, self.settings.job_result_ttl_hours),
                    error=error,
                ):
                    self._stage(
                        db,
                        claimed.user_id,
                        claimed.id,
                        JobStatus.FAILED,
                        progress.done,
                        progress.total,
                    )
        except Exception as exc:  # it goes stale and is tried again
            logger.warning("job %s: could not record its failure: %s", claimed.id, exc)

    async def _give_back(self, claimed: Claimed) -> None:
        async with unit_of_work(self.sessionmaker, self.bus) as db:
            if await JobOperatorRepository(db).give_back(claimed.id, claimed.attempt):
                self._stage(db, claimed.user_id, claimed.id, JobStatus.QUEUED, 0, None)

    # ------------------------------------------------------------------ purging

    async def purge(self) -> int:
        """Deletes the jobs past their expiry (and their results); returns how many."""
        removed = 0
        while True:
            async with unit_of_work(self.sessionmaker, self.bus) as db:
                n = await JobOperatorRepository(db).purge(now=self.clock.now(), batch=PURGE_BATCH)
            removed += n
            if n < PURGE_BATCH:
                return removed

    async def queue_due(self) -> list[str]:
        """Queues the scheduled runs due now (once per interval across all processes)."""
        return list(
            await queue_due(
                self.sessionmaker, self.settings, now=self.clock.now(), skip=self._scheduled
            )
        )

    async def _schedule_loop(self) -> None:
        while True:
            try:
                if await self.queue_due():
                    self.wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down; try again next tick
                logger.warning("could not queue the scheduled runs, will retry: %s", exc)
            # Not in step with the other processes: whichever looks first queues the run.
            await asyncio.sleep(self.settings.job_poll_seconds * random.uniform(0.5, 1.5))


@contextlib.asynccontextmanager
async def running_job_worker(worker: JobWorker) -> AsyncIterator[JobWorker]:
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
