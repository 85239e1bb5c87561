"""API shapes of jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from app.core.schemas import ApiModel


class JobStarted(ApiModel):
    job_id: uuid.UUID
    status: str
    status_url: str = Field(description="Where to follow the job: GET it.")


class JobProgress(ApiModel):
    done: int
    total: int | None = Field(description="Unknown (null) until the job knows it.")


class JobError(ApiModel):
    code: str
    detail: str


class JobOut(ApiModel):
    job_id: uuid.UUID
    kind: str = Field(description="`export` (the ZIP) or `import`.")
    status: str = Field(description="`queued`, `running`, `done` or `failed`.")
    progress: JobProgress
    attempts: int
    result: dict[str, Any] | None = Field(
        description="An export: its fileName, mediaType and size. An import: what "
        "`POST /api/import` answers (imported, skipped, sessions, failed)."
    )
    download_url: str | None = Field(description="The result file, once an export is done.")
    error: JobError | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime = Field(description="When the job and its result are purged.")
