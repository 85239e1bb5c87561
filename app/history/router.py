"""History: list and search, rename, restore, archive and delete conversations.

Fixed paths (`/sessions/archive-all`, `/sessions/restore`, `/sessions/bulk`) are declared before the
`/sessions/{session_id}` ones. Another user's session is a 404 on every route, exactly
like a missing one (`OwnedSession`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant import catalog
from app.auth.dependencies import CurrentUser, RateLimit
from app.conversations import tags, trash
from app.conversations.dependencies import OwnedSession
from app.conversations.models import ChatSession
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SettingsDep
from app.core.errors import InvalidInputError
from app.history import service as history
from app.history.dependencies import actor_of
from app.history.reading import active_path_length
from app.history.schemas import (
    ActivityPage,
    ArchiveAllResult,
    BulkRequest,
    BulkRestoreRequest,
    BulkRestoreResult,
    BulkResult,
    SessionOut,
    SessionPage,
    SessionRename,
    SessionSummary,
    TagList,
    TagOut,
    activity_out,
)
from app.sharing.dependencies import ShareBase, shared_out

router = APIRouter(prefix="/api/sessions", tags=["history"], dependencies=[RateLimit("default")])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such conversation (or not yours)"}
}


async def _out(session: AsyncSession, chat_session: ChatSession) -> SessionOut:
    """The session as history lists it: `messageCount` counts the active path."""
    count = await active_path_length(session, chat_session)
    return SessionOut.model_validate(chat_session).model_copy(update={"message_count": count})


activity_router = APIRouter(prefix="/api", tags=["history"], dependencies=[RateLimit("default")])


@activity_router.get("/tags", response_model=TagList)
async def list_tags(user: CurrentUser, session: SessionDep) -> TagList:
    """Your tags, most used first, with how many conversations carry each."""
    counts = await tags.tag_counts(session=session, user_id=user.id)
    return TagList(tags=[TagOut(tag=c.tag, count=c.count) for c in counts])


@activity_router.get("/activity", response_model=ActivityPage)
async def my_activity(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=trash.ACTIVITY_PAGE_MAX)] = trash.ACTIVITY_PAGE_DEFAULT,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="nextBefore")] = None,
) -> ActivityPage:
    """What happened to your conversations: trash, restore, delete, purge, admin delete."""
    page = await trash.list_activity(session=session, user_id=user.id, limit=limit, before=before)
    return ActivityPage(items=[activity_out(e) for e in page.items], next_before=page.next_before)


@router.get("", response_model=SessionPage)
async def list_sessions(
    settings: SettingsDep,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    base: ShareBase,
    status: Annotated[history.StatusFilter, Query()] = "all",
    q: Annotated[
        str | None,
        Query(
            max_length=history.SEARCH_MAX_CHARS, description="Words to find in titles and messages"
        ),
    ] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Only with this tag")] = None,
    limit: Annotated[int, Query(ge=1, le=history.PAGE_MAX)] = history.PAGE_DEFAULT,
    cursor: Annotated[
        str | None, Query(max_length=400, description="nextCursor of the previous page")
    ] = None,
    compact: Annotated[
        bool,
        Query(
            description="Items with only what a history row shows (no createdAt, trashedAt, "
            "model, temporary), null fields left out: what the web page reads"
        ),
    ] = False,
) -> SessionPage | Response:
    page = await history.list_sessions(
        session=session,
        user_id=user.id,
        status=status,
        q=q,
        tag=tag,
        limit=limit,
        cursor=cursor,
        ttl_seconds=settings.session_ttl_seconds,
    )
    now = clock.now()
    out = SessionPage(
        items=[
            _with_share(item, page.shares.get(item.id), base=base, now=now) for item in page.items
        ],
        next_cursor=page.next_cursor,
        now=now,
    )
    if compact:
        return Response(content=out.compact_json(), media_type="application/json")
    return out


def _with_share(
    item: SessionSummary, share: history.ShareRef | None, *, base: str, now: datetime
) -> SessionSummary:
    if share is None:
        return item
    shared = shared_out(base=base, token=share.token, expires_at=share.expires_at, now=now)
    return item.model_copy(update={"shared": shared})


@router.post("/archive-all", response_model=ArchiveAllResult)
async def archive_all(user: CurrentUser, session: SessionDep, clock: ClockDep) -> ArchiveAllResult:
    count = await history.archive_all(session=session, user_id=user.id, now=clock.now())
    return ArchiveAllResult(archived=count)


@router.post("/restore", response_model=BulkRestoreResult)
async def restore_many(
    body: BulkRestoreRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> BulkRestoreResult:
    restored, missing = await history.restore_many(
        session=session,
        user_id=user.id,
        ids=body.ids,
        now=clock.now(),
        actor=actor_of(request, user.id),
    )
    return BulkRestoreResult(restored=restored, not_found=missing)


@router.post("/bulk", response_model=BulkResult, responses=_NOT_FOUND)
async def bulk(
    body: BulkRequest,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> BulkResult:
    """One action over several conversations, all or nothing: if any id is not yours,
    nothing changes and the answer is a 404 listing them (`notFound`)."""
    ids = await history.bulk_act(
        session=session,
        user_id=user.id,
        ids=body.ids,
        action=body.action,
        now=clock.now(),
        retention_days=settings.trash_retention_days,
        actor=actor_of(request, user.id),
        tags=body.tags,
    )
    return BulkResult(action=body.action, ids=ids)


@router.patch("/{session_id}", response_model=SessionOut, responses=_NOT_FOUND)
async def update_session(
    body: SessionRename, chat_session: OwnedSession, session: SessionDep, request: Request
) -> SessionOut:
    """Rename (`title`), pin (`pinned`), tag (`tags`, replacing the old ones) or choose
    the model that answers from the next message on (`model`, an id of GET /api/models)."""
    if body.model is not None and not catalog.is_known(request.app.state.assistant, body.model):
        raise InvalidInputError(
            f"No model {body.model!r} here: GET /api/models lists them.", code="unknown_model"
        )
    await history.update_session(
        session=session,
        chat_session=chat_session,
        title=body.title,
        pinned=body.pinned,
        tags=body.tags,
        model=body.model,
    )
    return await _out(session, chat_session)


@router.post("/{session_id}/restore", response_model=SessionOut, responses=_NOT_FOUND)
async def restore_session(
    chat_session: OwnedSession, request: Request, session: SessionDep, clock: ClockDep
) -> SessionOut:
    """Out of the trash (back to active or archived, as it was), or out of the archive."""
    await history.restore_session(
        session=session,
        chat_session=chat_session,
        now=clock.now(),
        actor=actor_of(request, chat_session.user_id),
    )
    return await _out(session, chat_session)


@router.post("/{session_id}/archive", response_model=SessionOut, responses=_NOT_FOUND)
async def archive_session(
    chat_session: OwnedSession, session: SessionDep, clock: ClockDep
) -> SessionOut:
    await history.archive_now(session=session, chat_session=chat_session, now=clock.now())
    return await _out(session, chat_session)


@router.delete("/{session_id}", status_code=204, responses=_NOT_FOUND)
async def delete_session(
    chat_session: OwnedSession,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    permanent: Annotated[
        bool, Query(description="Delete for good instead of moving to the trash")
    ] = False,
) -> Response:
    """Moves the conversation to the trash (restore it with `POST .../restore`), or with
    `permanent=true` deletes it for good, with its messages, drafts and images."""
    await history.delete_session(
        session=session,
        chat_session=chat_session,
        now=clock.now(),
        retention_days=settings.trash_retention_days,
        actor=actor_of(request, chat_session.user_id),
        permanent=permanent,
    )
    return Response(status_code=204)
