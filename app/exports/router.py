"""Export a conversation (JSON or PDF), export everything (ZIP)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentUser, RateLimit
from app.conversations.dependencies import OwnedSession
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.core.errors import InvalidInputError
from app.core.validation import SaneDate
from app.exports import downloads, naming, service, zip_export
from app.exports.dependencies import DownloadSlotDep
from app.exports.responses import DownloadResponse
from app.history import service as history

router = APIRouter(prefix="/api", tags=["export"], dependencies=[RateLimit("default")])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such conversation (or not yours)"}
}


_TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"description": "Too many requests, or too many downloads in progress at once"}
}


@router.get(
    "/sessions/{session_id}/export",
    responses={
        **_NOT_FOUND,
        **_TOO_MANY,
        200: {
            "content": {"application/json": {}, "application/pdf": {}},
            "description": "The conversation as a download",
        },
    },
    dependencies=[RateLimit("export"), DownloadSlotDep],
)
async def export_session(
    chat_session: OwnedSession,
    user: CurrentUser,
    clock: ClockDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    format: Annotated[Literal["json", "pdf"], Query()] = "json",
) -> DownloadResponse:
    ascii_name, unicode_name = naming.download_name(
        chat_session.title, chat_session.created_at, format
    )
    headers = {
        "Content-Disposition": naming.content_disposition(ascii_name, unicode_name),
        "Cache-Control": "no-store",
    }
    if format == "pdf":
        produce = partial(
            downloads.conversation_pdf,
            sessionmaker=sessionmaker,
            user_id=user.id,
            session_id=chat_session.id,
            data_dir=settings.data_dir,
            budget=service.pdf_budget(settings),
        )
        return DownloadResponse(produce, media_type="application/pdf", headers=headers)
    produce = partial(
        downloads.conversation_json,
        sessionmaker=sessionmaker,
        user_id=user.id,
        session_id=chat_session.id,
        now=clock.now(),
        data_dir=settings.data_dir,
    )
    return DownloadResponse(produce, media_type="application/json", headers=headers)


@router.get(
    "/export",
    responses={
        **_TOO_MANY,
        200: {"content": {"application/zip": {}}, "description": "A ZIP archive"},
    },
    dependencies=[RateLimit("export"), DownloadSlotDep],
)
async def export_all(
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    user: CurrentUser,
    # Commits the request's (sign-in) transaction when the route returns, so its connection
    # is back in the pool before the download is made and sent.
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
) -> DownloadResponse:
    if date_from and date_to and date_from > date_to:
        raise InvalidInputError("`from` is after `to`.", code="invalid_date_range")
    flt = history.SessionFilter(
        status=status, q=history.normalize_query(q), date_from=date_from, date_to=date_to
    )
    now = clock.now()
    produce = partial(
        zip_export.archive,
        sessionmaker=sessionmaker,
        user_id=user.id,
        flt=flt,
        now=now,
        data_dir=settings.data_dir,
        budget=service.pdf_budget(settings),
    )
    headers = {
        "Content-Disposition": naming.content_disposition(zip_export.zip_download_name(now)),
        "Cache-Control": "no-store",
    }
    return DownloadResponse(produce, media_type="application/zip", headers=headers)
