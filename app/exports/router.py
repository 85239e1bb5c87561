"""Export a conversation (JSON or PDF), export everything (ZIP)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentUser, RateLimit
from app.conversations.dependencies import OwnedSession
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.exports import downloads, naming, service, zip_export
from app.exports.dependencies import DownloadSlotDep, EverythingFilter
from app.exports.responses import DownloadResponse, attachment

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
    if format == "pdf":
        produce = partial(
            downloads.conversation_pdf,
            sessionmaker=sessionmaker,
            user_id=user.id,
            session_id=chat_session.id,
            data_dir=settings.data_dir,
            budget=service.pdf_budget(settings),
        )
        media_type = "application/pdf"
    else:
        produce = partial(
            downloads.conversation_json,
            sessionmaker=sessionmaker,
            user_id=user.id,
            session_id=chat_session.id,
            now=clock.now(),
            data_dir=settings.data_dir,
        )
        media_type = "application/json"
    return attachment(
        produce, media_type=media_type, file_name=ascii_name, unicode_name=unicode_name
    )


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
    flt: EverythingFilter,
    format: Annotated[Literal["zip"], Query()] = "zip",
) -> DownloadResponse:
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
    return attachment(
        produce, media_type="application/zip", file_name=zip_export.zip_download_name(now)
    )
