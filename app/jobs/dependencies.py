"""The job a route names: the caller's own, or a 404 (another user's reads as missing)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import CurrentUser
from app.core.db import SessionDep
from app.jobs import service
from app.jobs.models import Job


async def owned_job_from_path(job_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Job:
    return await service.owned_job(session=session, user_id=user.id, job_id=job_id)


OwnedJob = Annotated[Job, Depends(owned_job_from_path)]
