"""The chat API, as the original clients call it, and reading one conversation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.assistant.base import Assistant
from app.auth.dependencies import CurrentUser
from app.conversations import service
from app.conversations.dependencies import ClockDep, OwnedSession
from app.conversations.schemas import ChatRequest, ChatResponse, MessageOut, SessionDetail
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import InvalidInputError, UpstreamError, UpstreamTimeoutError
from app.core.metrics import CHAT_TURNS
from app.ratelimit.dependencies import RateLimit

router = APIRouter(prefix="/api", tags=["chat"], dependencies=[RateLimit("default")])

MESSAGE_PAGE_DEFAULT = 200
MESSAGE_PAGE_MAX = 1000


@router.post(
    "/chat",
    response_model=ChatResponse,
    response_model_exclude_none=False,
    responses={
        401: {"description": "Not signed in"},
        422: {"description": "Invalid input"},
        429: {"description": "Rate limited"},
    },
    dependencies=[RateLimit("chat")],
)
async def chat(
    body: ChatRequest, request: Request, user: CurrentUser, session: SessionDep, clock: ClockDep
) -> Any:
    settings: Settings = request.app.state.settings
    assistant: Assistant = request.app.state.assistant
    last_user = next((m for m in reversed(body.messages) if m.role == "user"), None)
    if last_user is None:
        raise InvalidInputError(
            "`messages` holds no message with role 'user'.", code="no_user_message"
        )
    message = service.validate_user_message(last_user.content, max_chars=settings.max_message_chars)

    result = await service.chat_turn(
        session=session,
        user_id=user.id,
        session_id=body.session_id,
        message=message,
        context=body.context,
        assistant=assistant,
        now=clock.now(),
        ttl_seconds=settings.session_ttl_seconds,
        limits=service.ContextLimits(settings.context_max_messages, settings.context_max_chars),
    )
    if result.error is not None:
        # Keep the user's message, then report the failure: commit before raising.
        await session.commit()
        CHAT_TURNS.labels(outcome="assistant_error").inc()
        extra = {"sessionId": result.session.id}
        if result.error.timed_out:
            raise UpstreamTimeoutError(
                "The assistant did not answer in time. Your message was saved; please retry.",
                extra=extra,
            )
        raise UpstreamError(
            f"The assistant failed: {result.error}. Your message was saved; please retry.",
            extra=extra,
        )
    CHAT_TURNS.labels(outcome="ok").inc()
    assert result.assistant_message is not None
    payload: dict[str, Any] = {
        "reply": result.assistant_message.content,
        "imageUrl": result.assistant_message.image_url,
        "sessionId": result.session.id,
    }
    if result.expired_session_id:
        payload["expiredSessionId"] = result.expired_session_id
    return JSONResponse(payload)


@router.get("/sessions/{session_id}", response_model=SessionDetail, tags=["sessions"])
async def read_session(
    chat_session: OwnedSession,
    user: CurrentUser,
    session: SessionDep,
    after_seq: Annotated[int, Query(ge=0, description="Return messages after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=MESSAGE_PAGE_MAX)] = MESSAGE_PAGE_DEFAULT,
) -> SessionDetail:
    messages = await service.list_messages(
        session=session,
        user_id=user.id,
        session_id=chat_session.id,
        after_seq=after_seq,
        limit=limit,
    )
    last_seq = messages[-1].seq if messages else after_seq
    return SessionDetail(
        id=chat_session.id,
        title=chat_session.title,
        status=chat_session.status,
        created_at=chat_session.created_at,
        last_activity_at=chat_session.last_activity_at,
        archived_at=chat_session.archived_at,
        message_count=chat_session.message_count,
        messages=[MessageOut.model_validate(m) for m in messages],
        next_after_seq=last_seq if last_seq < chat_session.message_count else None,
    )
