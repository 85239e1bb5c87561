"""Import exports back: `POST /api/import`.

Accepted, recognised by content: Chatkeep's per-conversation JSON (`chatkeep.conversation`
v1), the all-at-once JSON (`chatkeep.export` v1) and the ZIP holding it; ChatGPT's
`conversations.json` or the split `conversations-NNN.json` of its ZIP; Claude's
`conversations.json`; Open WebUI's chat export. The upload lands in a bounded temporary
file (`upload`), is recognised by its first bytes and keys and streamed one conversation
at a time under budgets (`reading`), other products' entries are turned into Chatkeep's
shape (`formats`) and checked like Chatkeep's own (`checks`), and batches bounded by rows
and bytes are written in the request's one transaction (`service`). A broken entry is left
out and listed in the answer; a refused file leaves nothing behind.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from app.auth.dependencies import CurrentUser, RateLimit, RateLimitOnSuccess
from app.core.db import SessionDep, end_transaction
from app.core.dependencies import ClockDep, SettingsDep
from app.imports.admission import ImportAdmissionDep
from app.imports.limits import ImportLimits
from app.imports.schemas import ImportFailureOut, ImportResult
from app.imports.service import import_file
from app.imports.upload import receive_upload
from app.ratelimit.dependencies import QuotaTicket

router = APIRouter(prefix="/api", tags=["export"], dependencies=[RateLimit("default")])


@router.post(
    "/import",
    response_model=ImportResult,
    responses={
        413: {"description": "The upload is too large"},
        422: {"description": "Not a Chatkeep export, or unsafe"},
        503: {"description": "Another large import is running (`import_busy`, Retry-After)"},
    },
)
async def import_conversations(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    admission: ImportAdmissionDep,
    # Checked here, counted only for an import that stored something.
    quota: Annotated[QuotaTicket, RateLimitOnSuccess("import")],
) -> ImportResult:
    limits = ImportLimits.from_settings(settings)
    # The sign-in lookup's transaction ends before the body is read: a slow upload holds
    # no connection. The upload lands in a bounded temporary file before any other query.
    await end_transaction(session)
    with await receive_upload(request, limits=limits) as upload:
        result = await import_file(
            session=session,
            user_id=user.id,
            upload=upload,
            limits=limits,
            now=clock.now(),
            admission=admission,
        )
    if result.imported:
        await quota.count()
    return ImportResult(
        imported=result.imported,
        skipped=result.skipped,
        sessions=result.sessions,
        failed=[
            ImportFailureOut(
                index=f.index, source_id=f.source_id, title=f.title, code=f.code, detail=f.detail
            )
            for f in result.failed
        ],
    )
