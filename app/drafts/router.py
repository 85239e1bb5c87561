"""Reading the draft ledger: a conversation's drafts, the user's posts, stored images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.auth.dependencies import CurrentUser, RateLimit
from app.conversations.dependencies import OwnedSession
from app.core.db import SessionDep
from app.drafts import ledger
from app.drafts.schemas import DraftList, PostList

router = APIRouter(prefix="/api", tags=["assistant"], dependencies=[RateLimit("default")])

POST_PAGE_DEFAULT = 50
POST_PAGE_MAX = 200
# An image id never gets other bytes, so browsers may keep it; "private": per user.
IMAGE_CACHE_CONTROL = "private, max-age=31536000, immutable"


@router.get("/sessions/{session_id}/drafts", response_model=DraftList)
async def read_drafts(
    chat_session: OwnedSession, user: CurrentUser, session: SessionDep
) -> DraftList:
    drafts = await ledger.list_drafts(session=session, user_id=user.id, session_id=chat_session.id)
    return DraftList(session_id=chat_session.id, drafts=drafts)


@router.get("/posts", response_model=PostList)
async def read_posts(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=POST_PAGE_MAX)] = POST_PAGE_DEFAULT,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`nextCursor` of the previous page")
    ] = None,
) -> PostList:
    posts, next_cursor = await ledger.list_posts(
        session=session, user_id=user.id, limit=limit, cursor=cursor
    )
    return PostList(posts=posts, next_cursor=next_cursor)


@router.get(
    "/images/{image_id}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
)
async def read_image(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    image_id: Annotated[str, Path(max_length=64)],
) -> Response:
    image = await ledger.get_owned_image(session=session, user_id=user.id, image_id=image_id)
    etag = f'"{image.sha256}"'
    headers = {"Cache-Control": IMAGE_CACHE_CONTROL, "ETag": etag, "Vary": "Cookie, Authorization"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content=image.data, media_type=image.content_type, headers=headers)
