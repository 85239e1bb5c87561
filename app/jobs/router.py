"""Jobs over HTTP: start an export or an import, follow it, download the result.

`POST /api/export/jobs` and `POST /api/import/jobs` answer 202 with the job's id at once;
`GET /api/jobs/{id}` tells its status and progress (also sent live on `/api/events`, kind
`job`), and `GET /api/jobs/{id}/result` sends a finished export from whichever instance is
asked. The synchronous `GET /api/export` and `POST /api/import` stay as they were.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse

from app.auth.dependencies import CurrentUser, RateLimit
from app.core.db import SessionDep, end_transaction
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.exports.dependencies import DownloadSlotDep, EverythingFilter
from app.exports.responses import DownloadResponse, attachment
from app.imports.limits import ImportLimits
from app.imports.upload import receive_upload
from app.jobs import service
from app.jobs.dependencies import OwnedJob
from app.jobs.models import Job, JobKind, JobStatus
from app.jobs.schemas import JobError, JobOut, JobProgress, JobStarted

router = APIRouter(prefix="/api", tags=["jobs"], dependencies=[RateLimit("default")])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such job (or not yours), or its result expired"}
}


def _status_url(job_id: uuid.UUID) -> str:
    return f"/api/jobs/{job_id}"


def _started(request: Request, background: BackgroundTasks, job: Job) -> JSONResponse:
    # The worker of this process looks at once; the job is committed by then (background
    # tasks run after the response, and the request commits before it).
    worker = getattr(request.app.state, "jobs", None)
    if worker is not None:
        background.add_task(worker.wake)
    body = JobStarted(job_id=job.id, status=job.status, status_url=_status_url(job.id))
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True),
        status_code=202,
        headers={"Location": _status_url(job.id)},
        background=background,
    )


def job_out(job: Job) -> JobOut:
    done = job.status == JobStatus.DONE.value
    return JobOut(
        job_id=job.id,
        kind=job.kind,
        status=job.status,
        progress=JobProgress(done=job.progress_done, total=job.progress_total),
        attempts=job.attempts,
        result=job.result,
        download_url=(
            f"{_status_url(job.id)}/result" if done and job.kind == JobKind.EXPORT.value else None
        ),
        error=JobError(**job.error) if job.error else None,
        created_at=job.created_at,
        finished_at=job.finished_at,
        expires_at=job.expires_at,
    )


@router.post(
    "/export/jobs",
    status_code=202,
    response_model=JobStarted,
    responses={429: {"description": "Too many exports"}},
    dependencies=[RateLimit("export")],
)
async def start_export_job(
    request: Request,
    background: BackgroundTasks,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    flt: EverythingFilter,
    format: Annotated[Literal["zip"], Query()] = "zip",
) -> JSONResponse:
    """The ZIP of `GET /api/export`, made by a job: follow it at `statusUrl`."""
    now = clock.now()
    job = await service.start_job(
        session=session,
        bus=getattr(request.app.state, "events", None),
        user_id=user.id,
        kind=JobKind.EXPORT,
        params=service.export_params(flt, now),
        now=now,
        ttl_hours=settings.job_result_ttl_hours,
    )
    return _started(request, background, job)


@router.post(
    "/import/jobs",
    status_code=202,
    response_model=JobStarted,
    responses={413: {"description": "The upload is too large"}},
    dependencies=[RateLimit("import")],
)
async def start_import_job(
    request: Request,
    background: BackgroundTasks,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> JSONResponse:
    """`POST /api/import` as a job: the file (multipart field `file`, or the raw body) is
    stored with the job and imported by a worker; the job's result is the import's answer.
    The whole import is one transaction: until the job is done, none of it is visible."""
    limits = ImportLimits.from_settings(settings)
    # No connection is held while the body arrives.
    await end_transaction(session)
    with await receive_upload(request, limits=limits) as upload:
        job = await service.start_job(
            session=session,
            bus=getattr(request.app.state, "events", None),
            user_id=user.id,
            kind=JobKind.IMPORT,
            params={},
            now=clock.now(),
            ttl_hours=settings.job_result_ttl_hours,
            upload=upload,
        )
    return _started(request, background, job)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=_NOT_FOUND)
async def get_job(job: OwnedJob) -> JobOut:
    return job_out(job)


@router.get(
    "/jobs/{job_id}/result",
    responses={
        **_NOT_FOUND,
        409: {"description": "The job is not done (`job_not_done`)"},
        200: {"content": {"application/zip": {}}, "description": "The result file"},
    },
    dependencies=[DownloadSlotDep],
)
async def download_job_result(
    # Read in the request's transaction, committed when the route returns: the file is
    # copied and sent with no connection held.
    job: OwnedJob,
    user: CurrentUser,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
) -> DownloadResponse:
    service.check_downloadable(job)
    result = job.result or {}
    produce = service.result_producer(
        sessionmaker=sessionmaker, user_id=user.id, job_id=job.id, data_dir=settings.data_dir
    )
    return attachment(
        produce, media_type=str(result["mediaType"]), file_name=str(result["fileName"])
    )
