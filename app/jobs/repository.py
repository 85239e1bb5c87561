"""Every statement on the job tables.

`JobRepository` is built for one owner: each statement names `user_id`, and chunks come
back opened when ENCRYPTION_KEYS is set. `JobOperatorRepository` is the workers' queue:
taking the next job (FOR UPDATE SKIP LOCKED, so workers in any number of processes never
take the same one), heartbeats, finishing, and purging what expired, across users. A
worker's writes to a job it runs name the attempt it runs (`attempts`), so a worker that
lost its job to another (its heartbeat went stale) can no longer change it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.errors import NotFoundError
from app.core.tenancy import owned, owned_delete
from app.encryption.crypto import associated_data, keyring_of, open_or_refuse
from app.jobs.models import Job, JobChunk, JobStatus

_jobs = Job.__table__  # type: ignore[attr-defined]
_chunks = JobChunk.__table__  # type: ignore[attr-defined]

UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _aad(user_id: uuid.UUID, job_id: uuid.UUID, part: str, n: int) -> bytes:
    return associated_data("job_chunk", "data", user_id, f"{job_id}:{part}:{n}")


@dataclass(frozen=True)
class Claimed:
    """A job a worker has just taken: run attempt `attempt` of it."""

    id: uuid.UUID
    user_id: uuid.UUID | None  # None: a scheduled run (app/jobs/schedule.py)
    kind: str
    params: dict[str, Any]
    attempt: int


class JobRepository:
    """The jobs of one user."""

    def __init__(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id

    async def add(self, job: Job) -> Job:
        if job.user_id != self.user_id:
            raise ValueError("a job belongs to the repository's owner")
        self.session.add(job)
        await self.session.flush()
        return job

    async def get(self, job_id: uuid.UUID) -> Job | None:
        row = await self.session.execute(owned(Job, self.user_id).where(col(Job.id) == job_id))
        return row.scalar_one_or_none()

    async def add_chunk(self, job_id: uuid.UUID, part: str, n: int, data: bytes) -> None:
        keyring = keyring_of(self.session)
        key_id: str | None = None
        if keyring is not None:
            key_id, data = keyring.seal(data, _aad(self.user_id, job_id, part, n))
        await self.session.execute(
            sa.insert(_chunks).values(
                job_id=job_id, part=part, n=n, user_id=self.user_id, data=data, key_id=key_id
            )
        )

    async def chunk_numbers(self, job_id: uuid.UUID, part: str) -> list[int]:
        c = _chunks.c
        rows = await self.session.execute(
            owned(_chunks, self.user_id, c.n)
            .where(c.job_id == job_id, c.part == part)
            .order_by(c.n)
        )
        return list(rows.scalars())

    async def chunk(self, job_id: uuid.UUID, part: str, n: int) -> bytes:
        c = _chunks.c
        row = (
            await self.session.execute(
                owned(_chunks, self.user_id, c.data, c.key_id).where(
                    c.job_id == job_id, c.part == part, c.n == n
                )
            )
        ).one_or_none()
        if row is None:  # purged meanwhile
            raise NotFoundError("No such job (or not yours).", code="job_not_found")
        if row.key_id is None:
            return bytes(row.data)
        return open_or_refuse(
            keyring_of(self.session),
            row.key_id,
            bytes(row.data),
            _aad(self.user_id, job_id, part, n),
        )

    async def chunks(self, job_id: uuid.UUID, part: str) -> AsyncIterator[bytes]:
        for n in await self.chunk_numbers(job_id, part):
            yield await self.chunk(job_id, part, n)

    async def drop_chunks(self, job_id: uuid.UUID, part: str) -> None:
        await self.session.execute(
            owned_delete(_chunks, self.user_id).where(
                _chunks.c.job_id == job_id, _chunks.c.part == part
            )
        )


class JobOperatorRepository:
    """The workers' statements, across users (operator repository)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue_scheduled(
        self,
        kind: str,
        *,
        scheduled_for: datetime,
        now: datetime,
        expires_at: datetime,
        params: dict[str, Any],
    ) -> uuid.UUID | None:
        """Queues the run of `kind` for the interval starting at `scheduled_for`, unless
        one is queued already (by any process: the unique key (kind, scheduled_for));
        the new job's id when this call queued it."""
        j = _jobs.c
        row = await self.session.execute(
            pg_insert(_jobs)
            .values(
                id=uuid.uuid4(),
                user_id=None,
                kind=kind,
                status=JobStatus.QUEUED.value,
                params=params,
                created_at=now,
                expires_at=expires_at,
                scheduled_for=scheduled_for,
            )
            .on_conflict_do_nothing(
                index_elements=[j.kind, j.scheduled_for],
                index_where=j.scheduled_for.is_not(None),
            )
            .returning(j.id)
        )
        return row.scalar_one_or_none()

    async def give_up_stale(
        self, *, stale_before: datetime, max_attempts: int, now: datetime, expires_at: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
        """Fails the running jobs whose worker went silent and that have had every try;
        returns their (id, user_id)."""
        j = _jobs.c
        rows = await self.session.execute(
            sa.update(_jobs)
            .where(
                j.status == JobStatus.RUNNING.value,
                j.heartbeat_at < stale_before,
                j.attempts >= max_attempts,
            )
            .values(
                status=JobStatus.FAILED.value,
                error={
                    "code": "job_interrupted",
                    "detail": "The job stopped with its worker, every time it was tried.",
                },
                finished_at=now,
                expires_at=expires_at,
            )
            .returning(j.id, j.user_id)
        )
        found = [(r.id, r.user_id) for r in rows]
        if found:
            await self.session.execute(
                sa.delete(_chunks).where(
                    _chunks.c.job_id.in_([i for i, _ in found]), _chunks.c.part == "input"
                )
            )
        return found

    async def claim(self, *, now: datetime, stale_before: datetime) -> Claimed | None:
        """Takes the oldest queued job, or a running one whose worker went silent."""
        j = _jobs.c
        pick = (
            sa.select(j.id)
            .where(
                sa.or_(
                    j.status == JobStatus.QUEUED.value,
                    sa.and_(j.status == JobStatus.RUNNING.value, j.heartbeat_at < stale_before),
                )
            )
            .order_by(j.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                sa.update(_jobs)
                .where(j.id == pick)
                .values(
                    status=JobStatus.RUNNING.value,
                    attempts=j.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    progress_done=0,
                )
                .returning(j.id, j.user_id, j.kind, j.params, j.attempts)
            )
        ).one_or_none()
        if row is None:
            return None
        return Claimed(
            id=row.id, user_id=row.user_id, kind=row.kind, params=row.params, attempt=row.attempts
        )

    def _mine(self, job_id: uuid.UUID, attempt: int) -> sa.Update:
        j = _jobs.c
        return sa.update(_jobs).where(
            j.id == job_id, j.attempts == attempt, j.status == JobStatus.RUNNING.value
        )

    async def beat(
        self, job_id: uuid.UUID, attempt: int, *, now: datetime, done: int, total: int | None
    ) -> bool:
        """The heartbeat and progress of a running job; False when it is no longer ours."""
        result = await self.session.execute(
            self._mine(job_id, attempt)
            .values(heartbeat_at=now, progress_done=done, progress_total=total)
            .returning(_jobs.c.id)
        )
        return result.one_or_none() is not None

    async def finish(
        self,
        job_id: uuid.UUID,
        attempt: int,
        *,
        status: JobStatus,
        now: datetime,
        expires_at: datetime,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        done: int | None = None,
        total: int | None = None,
    ) -> bool:
        """Ends attempt `attempt` of the job; False when it is no longer ours (nothing
        changed). Its input is dropped."""
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": now,
            "heartbeat_at": now,
            "expires_at": expires_at,
            "result": result,
            "error": error,
        }
        if done is not None:
            values["progress_done"] = done
        if total is not None:
            values["progress_total"] = total
        ended = (
            await self.session.execute(
                self._mine(job_id, attempt).values(**values).returning(_jobs.c.id)
            )
        ).one_or_none()
        if ended is None:
            return False
        await self.session.execute(
            sa.delete(_chunks).where(_chunks.c.job_id == job_id, _chunks.c.part == "input")
        )
        return True

    async def give_back(self, job_id: uuid.UUID, attempt: int) -> bool:
        """Puts a job its worker stopped on purpose back in the queue."""
        result = await self.session.execute(
            self._mine(job_id, attempt)
            .values(status=JobStatus.QUEUED.value, heartbeat_at=None, progress_done=0)
            .returning(_jobs.c.id)
        )
        return result.one_or_none() is not None

    async def purge(self, *, now: datetime, batch: int = 1000) -> int:
        """Deletes up to `batch` jobs past `expires_at` that no worker runs (their chunks go
        with them); returns how many."""
        j = _jobs.c
        expired = (
            sa.select(j.id)
            .where(j.expires_at < now, j.status != JobStatus.RUNNING.value)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(sa.delete(_jobs).where(j.id.in_(expired)).returning(j.id))
        return len(rows.all())
