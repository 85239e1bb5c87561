"""Starting jobs, reading them, and what each kind of job does.

A job is a row in `job` (app/jobs/models.py) written in the request's transaction; a
worker of any process takes it (app/jobs/worker.py). Its input (an uploaded import) and
its result (the ZIP) are chunks in `job_chunk`, so any instance can run it and any
instance can send the result. Owners see their own jobs only: another user's job is a
404, like a missing one.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import CommitHooks, unit_of_work
from app.core.errors import ConflictError, NotFoundError
from app.events.bus import Event, EventBus, user_event
from app.exports import zip_export
from app.exports.downloads import MEMORY_SPOOL_BYTES, Download, finished, spool_dir
from app.history.service import SessionFilter
from app.imports.limits import ImportLimits
from app.imports.service import ImportOutcome, import_file
from app.jobs.models import Job, JobKind, JobStatus
from app.jobs.repository import JobOperatorRepository, JobRepository

if TYPE_CHECKING:
    from app.typesetting.pdf import PdfBudget

# Input and result are stored in pieces of this size.
STORED_CHUNK_BYTES = 1024 * 1024
INPUT, RESULT = "input", "result"


def job_not_found() -> NotFoundError:
    return NotFoundError("No such job (or not yours).", code="job_not_found")


def expiry(now: datetime, ttl_hours: float) -> datetime:
    return now + timedelta(hours=ttl_hours)


def job_event(job: Job) -> Event:
    """The live event of a job's change (`/api/events` kind `job`): ids and counts only.
    Only a user's job has one (a scheduled run has no owner)."""
    if job.user_id is None:
        raise ValueError("a scheduled run has no owner to tell")
    return user_event(
        job.user_id,
        "job",
        jobId=str(job.id),
        status=job.status,
        done=job.progress_done,
        total=job.progress_total,
    )


# ---------------------------------------------------------------------------- starting


def export_params(flt: SessionFilter, now: datetime) -> dict[str, Any]:
    return {
        "status": flt.status,
        "q": flt.q,
        "from": flt.date_from.isoformat() if flt.date_from else None,
        "to": flt.date_to.isoformat() if flt.date_to else None,
        "now": now.isoformat(),
    }


def export_filter(params: dict[str, Any]) -> SessionFilter:
    return SessionFilter(
        status=params["status"],
        q=params["q"],
        date_from=date.fromisoformat(params["from"]) if params["from"] else None,
        date_to=date.fromisoformat(params["to"]) if params["to"] else None,
    )


async def start_job(
    *,
    session: AsyncSession,
    bus: EventBus | None,
    user_id: uuid.UUID,
    kind: JobKind,
    params: dict[str, Any],
    now: datetime,
    ttl_hours: float,
    upload: IO[bytes] | None = None,
) -> Job:
    """Queues a job (and its input, read from `upload` a chunk at a time). Flushes; it
    runs once the caller commits."""
    repo = JobRepository(session, user_id)
    job = await repo.add(
        Job(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=kind.value,
            status=JobStatus.QUEUED.value,
            params=params,
            created_at=now,
            expires_at=expiry(now, ttl_hours),
        )
    )
    if upload is not None:
        upload.seek(0)
        n = 0
        while data := await anyio.to_thread.run_sync(upload.read, STORED_CHUNK_BYTES):
            await repo.add_chunk(job.id, INPUT, n, data)
            n += 1
    if bus is not None:
        bus.stage(session, job_event(job))
    return job


async def owned_job(*, session: AsyncSession, user_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    job = await JobRepository(session, user_id).get(job_id)
    if job is None:
        raise job_not_found()
    return job


def check_downloadable(job: Job) -> None:
    """A job whose result can be downloaded: a finished export."""
    if job.kind != JobKind.EXPORT.value:
        raise job_not_found()
    if job.status == JobStatus.FAILED.value:
        raise ConflictError("The job failed; it has no result.", code="job_failed")
    if job.status != JobStatus.DONE.value:
        raise ConflictError(
            f"The job is {job.status}; its result is ready when it is done.",
            code="job_not_done",
        )


def result_producer(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    job_id: uuid.UUID,
    data_dir: Path,
) -> Callable[[], Awaitable[Download]]:
    return partial(
        result_file, sessionmaker=sessionmaker, user_id=user_id, job_id=job_id, data_dir=data_dir
    )


async def result_file(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    job_id: uuid.UUID,
    data_dir: Path,
) -> Download:
    """A finished job's result, copied from the database into a spool file a chunk per
    short transaction, to be sent with no connection held."""
    out = cast(
        IO[bytes],
        tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=MEMORY_SPOOL_BYTES, dir=str(spool_dir(data_dir))
        ),
    )
    try:
        async with sessionmaker() as db:
            numbers = await JobRepository(db, user_id).chunk_numbers(job_id, RESULT)
            await db.rollback()
        if not numbers:
            raise job_not_found()
        for n in numbers:
            async with sessionmaker() as db:
                data = await JobRepository(db, user_id).chunk(job_id, RESULT, n)
                await db.rollback()
            await anyio.to_thread.run_sync(out.write, data)
        return finished(out)
    except BaseException:
        out.close()
        raise


# ----------------------------------------------------------------------------- running


@dataclass
class Progress:
    """A running job's progress, set by the work (from any thread), written by the
    worker's heartbeat."""

    done: int = 0
    total: int | None = None

    def set(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total


@dataclass(frozen=True)
class JobContext:
    """What a job's work needs, and how it tells its progress."""

    sessionmaker: async_sessionmaker[AsyncSession]
    hooks: CommitHooks | None
    user_id: uuid.UUID
    job_id: uuid.UUID
    attempt: int
    params: dict[str, Any]
    data_dir: Path
    progress: Progress
    now: Callable[[], datetime]
    ttl_hours: float
    pdf_budget: PdfBudget | None
    import_limits: ImportLimits


class JobLostError(Exception):
    """The job was taken by another worker (this one's heartbeat went stale)."""


async def _done(
    db: AsyncSession, ctx: JobContext, result: dict[str, Any], bus: EventBus | None
) -> None:
    now = ctx.now()
    total = ctx.progress.total if ctx.progress.total is not None else ctx.progress.done
    ended = await JobOperatorRepository(db).finish(
        ctx.job_id,
        ctx.attempt,
        status=JobStatus.DONE,
        now=now,
        expires_at=expiry(now, ctx.ttl_hours),
        result=result,
        done=total,
        total=total,
    )
    if not ended:
        raise JobLostError(str(ctx.job_id))
    job = await JobRepository(db, ctx.user_id).get(ctx.job_id)
    if bus is not None and job is not None:
        bus.stage(db, job_event(job))


async def run_export(ctx: JobContext, bus: EventBus | None) -> None:
    """The ZIP of everything (or of a filter): built in a spool file with short reads,
    then stored in chunks and the job marked done, in one transaction."""
    params = ctx.params
    now = datetime.fromisoformat(params["now"])
    download = await zip_export.archive(
        sessionmaker=ctx.sessionmaker,
        user_id=ctx.user_id,
        flt=export_filter(params),
        now=now,
        data_dir=ctx.data_dir,
        budget=ctx.pdf_budget,
        progress=ctx.progress.set,
    )
    try:
        async with unit_of_work(ctx.sessionmaker, ctx.hooks) as db:
            repo = JobRepository(db, ctx.user_id)
            n = 0
            download.handle.seek(0)
            while data := await anyio.to_thread.run_sync(download.handle.read, STORED_CHUNK_BYTES):
                await repo.add_chunk(ctx.job_id, RESULT, n, data)
                n += 1
            result = {
                "fileName": zip_export.zip_download_name(now),
                "mediaType": "application/zip",
                "size": download.size,
            }
            await _done(db, ctx, result, bus)
    finally:
        download.close()


def import_result(outcome: ImportOutcome) -> dict[str, Any]:
    return {
        "imported": outcome.imported,
        "skipped": outcome.skipped,
        "sessions": outcome.sessions,
        "failed": [
            {
                "index": f.index,
                "sourceId": f.source_id,
                "title": f.title,
                "code": f.code,
                "detail": f.detail,
            }
            for f in outcome.failed
        ],
    }


async def run_import(ctx: JobContext, bus: EventBus | None) -> None:
    """The uploaded file copied from the job's input to a local file, then imported in one
    transaction that also marks the job done: a worker killed half-way leaves nothing of
    the import behind, and the next try starts again from the file."""
    upload = cast(IO[bytes], tempfile.TemporaryFile(dir=str(spool_dir(ctx.data_dir))))  # noqa: SIM115
    try:
        async with ctx.sessionmaker() as db:
            repo = JobRepository(db, ctx.user_id)
            async for data in repo.chunks(ctx.job_id, INPUT):
                await anyio.to_thread.run_sync(upload.write, data)
            await db.rollback()
        upload.seek(0)
        async with unit_of_work(ctx.sessionmaker, ctx.hooks) as db:
            outcome = await import_file(
                session=db,
                user_id=ctx.user_id,
                upload=upload,
                limits=ctx.import_limits,
                now=ctx.now(),
                on_batch=lambda written: ctx.progress.set(written, None),
            )
            await _done(db, ctx, import_result(outcome), bus)
    finally:
        upload.close()


RUNNERS = {JobKind.EXPORT.value: run_export, JobKind.IMPORT.value: run_import}
