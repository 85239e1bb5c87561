"""The chat API (the original clients' `POST /api/chat`, JSON or streamed), following a
turn's events, and stopping a turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response

from app.auth.dependencies import CurrentUser, RateLimit, VerifiedEmail
from app.conversations.schemas import ChatRequest, ChatResponse, RegenerateRequest
from app.core.db import RequestSessionDep, SessionDep
from app.core.errors import InvalidInputError, NotFoundError, StoredProblem
from app.core.sse import MEDIA_TYPE, Frame, event_stream, wants_event_stream
from app.core.validation import PG_INT_MAX
from app.turns import following
from app.turns.admission import OpenSlotDep, open_slot
from app.turns.dependencies import TurnServicesDep
from app.turns.models import ChatTurn, TurnStatus
from app.turns.schemas import TurnStopOut
from app.turns.start import start_regenerate, start_turn
from app.turns.stream import follow

router = APIRouter(prefix="/api", tags=["chat"], dependencies=[RateLimit("default")])
# `POST /api/chat` takes its place in line (app/turns/admission.py) before anything else,
# the sign-in check included: that is where a request first takes a pooled connection.
chat_router = APIRouter(
    prefix="/api", tags=["chat"], dependencies=[Depends(open_slot), RateLimit("default")]
)

MAX_EVENT_ID = 2**31 - 1
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "Server-sent events"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such turn in this conversation (or not yours)"}
}


async def _as_json(frames: AsyncIterator[Frame], *, with_seq: bool) -> JSONResponse:
    """The seed's JSON answer, from the same events a streaming client gets; an edit or
    a regenerated reply adds the reply's `seq` (the seed's clients never send those)."""
    expired: str | None = None
    async for frame in frames:
        if frame.event == "turn":
            expired = frame.data.get("expiredSessionId")
        elif frame.event == "done":
            payload: dict[str, Any] = {
                "reply": frame.data["reply"],
                "imageUrl": frame.data["imageUrl"],
                "sessionId": frame.data["sessionId"],
            }
            if with_seq:
                payload["seq"] = frame.data.get("seq")
            if expired:
                payload["expiredSessionId"] = expired
            return JSONResponse(payload)
        elif frame.event == "error":
            raise StoredProblem(frame.data)
    raise RuntimeError("the turn's events ended without done or error")  # pragma: no cover


_TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "JSON, or events with Accept"},
    401: {"description": "Not signed in"},
    404: {
        "description": "With editSeq, restore or on regenerate: no such conversation "
        "(or not yours), or no such message"
    },
    409: {
        "description": "A reply is still being written in this conversation; with restore, "
        "the conversation is in the trash (session_trashed)"
    },
    422: {"description": "Invalid input, or an Idempotency-Key reused for another body"},
    429: {"description": "Rate limited"},
    502: {"description": "The model failed (the message is kept)"},
    503: {"description": "Too many replies generating on this server"},
    504: {"description": "The model timed out (the message is kept)"},
}


async def _answer(
    request: Request, services: TurnServicesDep, user_id: Any, turn_id: Any, *, with_seq: bool
) -> Response:
    ctx = services.follow_context()
    if wants_event_stream(request.headers.get("accept")):
        return event_stream(
            follow(ctx, user_id=user_id, turn_id=turn_id, after=None),
            send_timeout=services.settings.sse_send_timeout_seconds,
        )
    frames = follow(ctx, user_id=user_id, turn_id=turn_id, after=None, end_on_drain=False)
    return await _as_json(frames, with_seq=with_seq)


@chat_router.post(
    "/chat",
    response_model=ChatResponse,
    response_model_exclude_none=False,
    responses=_TURN_RESPONSES,
    dependencies=[RateLimit("chat"), VerifiedEmail],
)
async def chat(
    body: ChatRequest,
    request: Request,
    user: CurrentUser,
    db: RequestSessionDep,
    services: TurnServicesDep,
    slot: OpenSlotDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Makes retries safe: kept 24 h or more"),
    ] = None,
) -> Response:
    user_id = user.id  # the turn ends the sign-in's transaction; keep what we need of it
    turn_id = await start_turn(
        db=db,
        services=services,
        slot=slot,
        user_id=user_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    return await _answer(request, services, user_id, turn_id, with_seq=body.edit_seq is not None)


@chat_router.post(
    "/sessions/{session_id}/messages/{seq}/regenerate",
    response_model=ChatResponse,
    response_model_exclude_none=False,
    responses=_TURN_RESPONSES,
    dependencies=[RateLimit("chat"), VerifiedEmail],
    tags=["sessions"],
)
async def regenerate(
    request: Request,
    user: CurrentUser,
    db: RequestSessionDep,
    services: TurnServicesDep,
    slot: OpenSlotDep,
    session_id: Annotated[str, Path(max_length=200)],
    seq: Annotated[int, Path(ge=1, le=PG_INT_MAX)],
    body: RegenerateRequest | None = None,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Makes retries safe: kept 24 h or more"),
    ] = None,
) -> Response:
    """A new reply: on an assistant message, a new version of it (a sibling); on a user
    message (a failed or stopped turn), a reply to it. The head moves to the new reply.
    Answers like `POST /api/chat`."""
    user_id = user.id
    turn_id = await start_regenerate(
        db=db,
        services=services,
        slot=slot,
        user_id=user_id,
        session_id=session_id,
        seq=seq,
        body=body or RegenerateRequest(),
        idempotency_key=idempotency_key,
    )
    return await _answer(request, services, user_id, turn_id, with_seq=True)


async def _owned_turn(
    db: RequestSessionDep, user: CurrentUser, session_id: str, turn_id: str
) -> ChatTurn:
    turn = await following.owned_turn(
        db=db, user_id=user.id, session_id=session_id, turn_id=turn_id
    )
    if turn is None:
        raise NotFoundError("No turn with this id in this conversation.", code="turn_not_found")
    return turn


def _last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or int(text) > MAX_EVENT_ID:
        raise InvalidInputError(
            "Last-Event-ID must be an event id this stream sent (a whole number).",
            code="invalid_last_event_id",
        )
    return int(text)


SessionIdPath = Annotated[str, Path(max_length=200)]
TurnIdPath = Annotated[str, Path(max_length=64)]


@router.get(
    "/sessions/{session_id}/turns/{turn_id}/events",
    response_class=Response,
    responses={**_STREAM, **_NOT_FOUND},
    tags=["sessions"],
)
async def turn_events(
    user: CurrentUser,
    db: RequestSessionDep,
    services: TurnServicesDep,
    session_id: SessionIdPath,
    turn_id: TurnIdPath,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> Response:
    """Every event of the turn after `Last-Event-ID`, then live ones until it ends."""
    after = _last_event_id(last_event_id)
    turn = await _owned_turn(db, user, session_id, turn_id)
    await db.close()
    return event_stream(
        follow(services.follow_context(), user_id=user.id, turn_id=turn.id, after=after),
        send_timeout=services.settings.sse_send_timeout_seconds,
    )


@router.post(
    "/sessions/{session_id}/turns/{turn_id}/cancel",
    response_model=TurnStopOut,
    responses={**_NOT_FOUND, 202: {"description": "Stopping"}},
    tags=["sessions"],
)
async def cancel_turn(
    user: CurrentUser,
    db: SessionDep,
    services: TurnServicesDep,
    session_id: SessionIdPath,
    turn_id: TurnIdPath,
) -> JSONResponse:
    """Stop the model. What it wrote so far is kept as the reply (`done` says stopped)."""
    turn = await _owned_turn(db, user, session_id, turn_id)
    if turn.status != TurnStatus.GENERATING:
        out = TurnStopOut(turn_id=str(turn.id), status=turn.status, stop_requested=False)
        return JSONResponse(out.model_dump(by_alias=True))
    await following.request_stop(db=db, bus=services.bus, turn=turn, now=services.clock.now())
    services.runner.stop(turn.id)  # at once when it runs here; else via the bus
    out = TurnStopOut(turn_id=str(turn.id), status=turn.status, stop_requested=True)
    return JSONResponse(out.model_dump(by_alias=True), status_code=202)
