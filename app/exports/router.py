"""Export a conversation (JSON or PDF), export everything (ZIP), import exports back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.auth.dependencies import CurrentUser, RateLimit
from app.conversations.dependencies import OwnedSession
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.core.errors import InvalidInputError
from app.core.validation import SaneDate
from app.exports import importer, naming, service, zip_export
from app.exports.schemas import ImportFailureOut, ImportResult
from app.history import service as history

router = APIRouter(prefix="/api", tags=["export"], dependencies=[RateLimit("default")])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such conversation (or not yours)"}
}


@router.get(
    "/sessions/{session_id}/export",
    responses={
        **_NOT_FOUND,
        200: {
            "content": {"application/json": {}, "application/pdf": {}},
            "description": "The conversation as a download",
        },
    },
    dependencies=[RateLimit("export")],
)
async def export_session(
    chat_session: OwnedSession,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    format: Annotated[Literal["json", "pdf"], Query()] = "json",
) -> StreamingResponse:
    ascii_name, unicode_name = naming.download_name(
        chat_session.title, chat_session.created_at, format
    )
    headers = {
        "Content-Disposition": naming.content_disposition(ascii_name, unicode_name),
        "Cache-Control": "no-store",
    }
    if format == "pdf":
        pdf = await service.session_pdf_file(
            session=session,
            user_id=user.id,
            session_id=chat_session.id,
            budget=service.pdf_budget(settings),
        )
        headers["Content-Length"] = str(pdf.size)
        return StreamingResponse(pdf.chunks(), media_type="application/pdf", headers=headers)
    stream = service.conversation_json_stream(
        sessionmaker=sessionmaker,
        user_id=user.id,
        session_id=chat_session.id,
        now=clock.now(),
    )
    return StreamingResponse(stream, media_type="application/json", headers=headers)


@router.get(
    "/export",
    responses={200: {"content": {"application/zip": {}}, "description": "A ZIP archive"}},
    dependencies=[RateLimit("export")],
)
async def export_all(
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    user: CurrentUser,
    # Ends the request's (sign-in) transaction before the body streams, so a long
    # download does not hold a connection idle in a transaction; the stream reads
    # through a session of its own.
    _session: SessionDep,
    clock: ClockDep,
    format: Annotated[Literal["zip"], Query()] = "zip",
    status: Annotated[history.StatusFilter, Query()] = "all",
    q: Annotated[str | None, Query(max_length=history.SEARCH_MAX_CHARS)] = None,
    date_from: Annotated[
        SaneDate | None, Query(alias="from", description="First day of last activity (UTC)")
    ] = None,
    date_to: Annotated[
        SaneDate | None,
        Query(alias="to", description="Last day of last activity (UTC), inclusive"),
    ] = None,
) -> StreamingResponse:
    if date_from and date_to and date_from > date_to:
        raise InvalidInputError("`from` is after `to`.", code="invalid_date_range")
    flt = history.SessionFilter(
        status=status, q=history.normalize_query(q), date_from=date_from, date_to=date_to
    )
    now = clock.now()
    stream = zip_export.export_zip_stream(
        sessionmaker=sessionmaker,
        user_id=user.id,
        flt=flt,
        now=now,
        pdf_budget=service.pdf_budget(settings),
    )
    headers = {
        "Content-Disposition": naming.content_disposition(zip_export.zip_download_name(now)),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(stream, media_type="application/zip", headers=headers)


@router.post(
    "/import",
    response_model=ImportResult,
    responses={
        413: {"description": "The upload is too large"},
        422: {"description": "Not a Chatkeep export, or unsafe"},
    },
    dependencies=[RateLimit("import")],
)
async def import_conversations(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ImportResult:
    limits = importer.ImportLimits.from_settings(settings)
    with await importer.receive_upload(request, limits=limits) as upload:
        result = await importer.import_file(
            session=session, user_id=user.id, upload=upload, limits=limits, now=clock.now()
        )
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
