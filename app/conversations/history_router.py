"""History: list and search, rename, restore, archive and delete conversations.

Fixed paths (`/sessions/archive-all`, `/sessions/restore`) are declared before the
`/sessions/{session_id}` ones. Another user's session is a 404 on every route, exactly
like a missing one (`OwnedSession`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import CurrentUser
from app.conversations import history
from app.conversations.dependencies import ClockDep, OwnedSession
from app.conversations.models import ChatSession
from app.conversations.schemas import (
    ArchiveAllResult,
    BulkRestoreRequest,
    BulkRestoreResult,
    SessionOut,
    SessionPage,
    SessionRename,
    SessionSummary,
)
from app.core.db import SessionDep
from app.ratelimit.dependencies import RateLimit

router = APIRouter(prefix="/api/sessions", tags=["history"], dependencies=[RateLimit("default")])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such conversation (or not yours)"}
}


def _out(chat_session: ChatSession) -> SessionOut:
    return SessionOut.model_validate(chat_session)


@router.get("", response_model=SessionPage)
async def list_sessions(
    user: CurrentUser,
    session: SessionDep,
    status: Annotated[history.StatusFilter, Query()] = "all",
    q: Annotated[
        str | None,
        Query(
            max_length=history.SEARCH_MAX_CHARS, description="Words to find in titles and messages"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=history.PAGE_MAX)] = history.PAGE_DEFAULT,
    cursor: Annotated[
        str | None, Query(max_length=400, description="nextCursor of the previous page")
    ] = None,
) -> SessionPage:
    page = await history.list_sessions(
        session=session, user_id=user.id, status=status, q=q, limit=limit, cursor=cursor
    )
    return SessionPage(
        items=[SessionSummary.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/archive-all", response_model=ArchiveAllResult)
async def archive_all(user: CurrentUser, session: SessionDep, clock: ClockDep) -> ArchiveAllResult:
    count = await history.archive_all(session=session, user_id=user.id, now=clock.now())
    return ArchiveAllResult(archived=count)


@router.post("/restore", response_model=BulkRestoreResult)
async def restore_many(
    body: BulkRestoreRequest, user: CurrentUser, session: SessionDep, clock: ClockDep
) -> BulkRestoreResult:
    restored, missing = await history.restore_many(
        session=session, user_id=user.id, ids=body.ids, now=clock.now()
    )
    return BulkRestoreResult(restored=restored, not_found=missing)


@router.patch("/{session_id}", response_model=SessionOut, responses=_NOT_FOUND)
async def rename_session(
    body: SessionRename, chat_session: OwnedSession, session: SessionDep
) -> SessionOut:
    await history.rename_session(session=session, chat_session=chat_session, title=body.title)
    return _out(chat_session)


@router.post("/{session_id}/restore", response_model=SessionOut, responses=_NOT_FOUND)
async def restore_session(
    chat_session: OwnedSession, session: SessionDep, clock: ClockDep
) -> SessionOut:
    await history.restore_session(session=session, chat_session=chat_session, now=clock.now())
    return _out(chat_session)


@router.post("/{session_id}/archive", response_model=SessionOut, responses=_NOT_FOUND)
async def archive_session(
    chat_session: OwnedSession, session: SessionDep, clock: ClockDep
) -> SessionOut:
    await history.archive_now(session=session, chat_session=chat_session, now=clock.now())
    return _out(chat_session)


@router.delete("/{session_id}", status_code=204, responses=_NOT_FOUND)
async def delete_session(
    chat_session: OwnedSession, user: CurrentUser, session: SessionDep
) -> Response:
    await history.delete_session(session=session, user_id=user.id, session_id=chat_session.id)
    return Response(status_code=204)
