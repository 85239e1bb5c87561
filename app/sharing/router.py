"""Share links. The owner's routes (`/api/sessions/{id}/share`, `/api/shares`) are signed in
and scoped like every conversation route: another user's conversation is a 404. The link's
own routes (`/s/{token}`, `/api/shared/{token}`) are open to anyone who has the token,
counted per client IP, and answer one 404 for every link that does not open."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Body, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from app.auth.dependencies import CurrentUser, RateLimit
from app.conversations.dependencies import OwnedSession
from app.core.db import SessionDep
from app.core.dependencies import ClockDep
from app.core.errors import NotFoundError
from app.core.markdown import to_html
from app.core.validation import format_utc
from app.sharing import service
from app.sharing.dependencies import ShareBase, share_url
from app.sharing.models import SharedLink
from app.sharing.schemas import (
    SharedConversationOut,
    SharedMessageOut,
    ShareList,
    ShareListItem,
    ShareOut,
    ShareRequest,
)
from app.web.assets import STATIC_PREFIX, asset_version

router = APIRouter(prefix="/api", tags=["sharing"], dependencies=[RateLimit("default")])
public_router = APIRouter(tags=["sharing"], dependencies=[RateLimit("shared")])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such conversation (or not yours)"}
}
_LINK_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such link: never made, revoked, or expired"}
}
# A revocable link: nothing may keep a copy (a browser's back button included), and
# search engines are asked to leave it out.
_PUBLIC_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Referrer-Policy": "no-referrer",
}
# Stricter than the app's own: no script at all, only our stylesheet and icon.
SHARED_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# No length bound here: any string that is not a live token is the same 404, never a 422.
_TOKEN = Annotated[str, PathParam(description="The token of a share link")]

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=True,  # every value in the page is escaped
    undefined=jinja2.StrictUndefined,
)


def _share_out(link: SharedLink, base: str) -> ShareOut:
    return ShareOut(
        url=share_url(base, link.token),
        token=link.token,
        expires_at=link.expires_at,
        created_at=link.created_at,
        refreshed_at=link.refreshed_at,
    )


@router.post(
    "/sessions/{session_id}/share",
    response_model=ShareOut,
    status_code=201,
    responses={**_NOT_FOUND, 200: {"model": ShareOut, "description": "The link was refreshed"}},
)
async def share_session(
    chat_session: OwnedSession,
    session: SessionDep,
    clock: ClockDep,
    base: ShareBase,
    response: Response,
    body: Annotated[ShareRequest | None, Body()] = None,
) -> ShareOut:
    """Shares the conversation as it is now: a read-only link anyone with it can open.
    Sharing again takes a new snapshot and keeps the link (201 for a new link, 200 for a
    refreshed one); `expiresInDays` left out keeps its expiry."""
    keep_expiry = body is None or "expires_in_days" not in body.model_fields_set
    shared = await service.share(
        session=session,
        chat_session=chat_session,
        now=clock.now(),
        expires_in_days=body.expires_in_days if body else None,
        keep_expiry=keep_expiry,
    )
    if not shared.created:
        response.status_code = 200
    return _share_out(shared.link, base)


@router.delete("/sessions/{session_id}/share", status_code=204, responses=_NOT_FOUND)
async def revoke_share(chat_session: OwnedSession, session: SessionDep) -> Response:
    """Revokes the conversation's link: from now on it is a 404. Sharing again makes a new
    one. Answers 204 whether or not there was a link."""
    await service.revoke(session=session, user_id=chat_session.user_id, session_id=chat_session.id)
    return Response(status_code=204)


@router.get("/shares", response_model=ShareList)
async def list_shares(
    user: CurrentUser, session: SessionDep, clock: ClockDep, base: ShareBase
) -> ShareList:
    """Your links that still open, newest first."""
    links = await service.list_live(session=session, user_id=user.id, now=clock.now())
    shown = await service.shown_counts(session=session, user_id=user.id, links=links)
    return ShareList(
        items=[
            ShareListItem(
                **_share_out(link, base).model_dump(),
                session_id=link.session_id,
                title=link.title,
                message_count=shown.get(link.session_id, 0),
            )
            for link in links
        ]
    )


def _snapshot_out(snapshot: service.Snapshot) -> SharedConversationOut:
    return SharedConversationOut(
        title=snapshot.title,
        shared_at=snapshot.shared_at,
        expires_at=snapshot.expires_at,
        messages=[
            SharedMessageOut(role=m.role, content=m.content, created_at=m.created_at)
            for m in snapshot.messages
        ],
    )


@public_router.get(
    "/api/shared/{token}", response_model=SharedConversationOut, responses=_LINK_NOT_FOUND
)
async def read_shared(
    token: _TOKEN, session: SessionDep, clock: ClockDep, response: Response
) -> SharedConversationOut:
    """A shared conversation as it was when shared. No sign-in needed."""
    try:
        snapshot = await service.read_snapshot(session=session, token=token, now=clock.now())
    except NotFoundError as exc:
        exc.headers.update(_PUBLIC_HEADERS)
        raise
    response.headers.update(_PUBLIC_HEADERS)
    return _snapshot_out(snapshot)


def _page(name: str, status: int, **values: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(static=STATIC_PREFIX, v=asset_version(), **values)
    return HTMLResponse(
        html,
        status_code=status,
        headers={**_PUBLIC_HEADERS, "Content-Security-Policy": SHARED_PAGE_CSP},
    )


@public_router.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
async def shared_page(token: _TOKEN, session: SessionDep, clock: ClockDep) -> HTMLResponse:
    try:
        snapshot = await service.read_snapshot(session=session, token=token, now=clock.now())
    except NotFoundError:
        return _page("shared_missing.html", 404)
    return _page(
        "shared.html",
        200,
        title=snapshot.title,
        shared_at=format_utc(snapshot.shared_at),
        shared_at_text=format_utc(snapshot.shared_at, _WHEN),
        messages=[
            {
                "role": m.role,
                "who": _WHO.get(m.role, m.role),
                "content": m.content,
                # Replies as Markdown, sanitized (app/core/markdown.py); the user's as typed.
                "html": None if m.role == "user" else Markup(to_html(m.content)),  # noqa: S704
                "at": m.created_at.isoformat(),
                "at_text": format_utc(m.created_at, _WHEN),
            }
            for m in snapshot.messages
        ],
    )


_WHEN = "%Y-%m-%d %H:%M UTC"
_WHO = {"user": "User", "assistant": "Assistant", "system": "System"}
