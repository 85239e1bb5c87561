"""`GET /api/events`: one stream per signed-in device, with what changed for this user."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from app.auth.dependencies import CurrentUser, RateLimit
from app.auth.tokens import STATE_API_KEY, STATE_SIGN_IN
from app.core.db import RequestSessionDep
from app.core.dependencies import SettingsDep
from app.core.sse import HEARTBEAT, MEDIA_TYPE, Frame, event_stream
from app.events.bus import EventBus, UserStream
from app.events.dependencies import EventBusDep

router = APIRouter(prefix="/api", tags=["events"], dependencies=[RateLimit("default")])

RESYNC = Frame("resync", {"reason": "Some events may have been missed: read what you show again."})
SIGNED_OUT = Frame("signed_out", {"reason": "This sign-in ended: sign in again to follow."})


def _number(event_id: str) -> int:
    _, _, number = event_id.partition("-")
    return int(number) if number.isdigit() else 0


async def _next_or_resync(stream: UserStream) -> tuple[str, Any]:
    """The next queued event, or ("", None) as soon as the stream must resync or stop."""
    if not stream.queue.empty():
        return stream.queue.get_nowait()
    getter = asyncio.ensure_future(stream.queue.get())
    flag = asyncio.ensure_future(stream.resync.wait())
    try:
        done, _ = await asyncio.wait({getter, flag}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (getter, flag):
            if not task.done():
                task.cancel()
    if getter in done:
        return getter.result()
    return "", None


async def _frames(
    bus: EventBus, stream: UserStream, *, last_event_id: str | None, heartbeat: float
) -> AsyncIterator[Frame]:
    hub = bus.hub
    ready_id, delivered = hub.position(stream.user_id)
    yield Frame("ready", {}, ready_id)
    if last_event_id:
        missed = hub.replay(stream.user_id, last_event_id)
        if missed is None:
            yield RESYNC
        else:
            for event_id, event in missed:
                yield Frame(event.kind, event.data, event_id)
    while not hub.draining:
        if stream.signed_out:
            yield SIGNED_OUT
            return
        if stream.resync.is_set():
            stream.resync.clear()
            while not stream.queue.empty():
                stream.queue.get_nowait()
            if hub.draining:
                return
            if stream.signed_out:
                continue
            yield RESYNC
        try:
            async with asyncio.timeout(heartbeat):
                event_id, event = await _next_or_resync(stream)
        except TimeoutError:
            yield HEARTBEAT
            continue
        if not event_id:
            continue  # woken to resync or to stop
        if _number(event_id) <= delivered and last_event_id:
            continue  # already sent as part of the replay
        yield Frame(event.kind, event.data, event_id)


@router.get(
    "/events",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "Server-sent events"}},
)
async def events(
    request: Request,
    user: CurrentUser,
    db: RequestSessionDep,
    settings: SettingsDep,
    bus: EventBusDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
) -> Response:
    """`message`, `turn` and `session` events of the signed-in user, on every device.

    Reconnect with `Last-Event-ID` to get what was missed, when this instance still has it;
    otherwise a `resync` event says to read the current state again.
    """
    await db.close()  # a stream may stay open for hours: hold no connection
    # The stream ends when what opened it ends: the sign-in, or the API key.
    opened_with = getattr(request.state, STATE_SIGN_IN, None) or getattr(
        request.state, STATE_API_KEY, None
    )
    sign_in_id = str(opened_with.id) if opened_with is not None else None

    async def frames() -> AsyncIterator[Frame]:
        with bus.hub.open_stream(str(user.id), sign_in_id) as stream:
            async for frame in _frames(
                bus, stream, last_event_id=last_event_id, heartbeat=settings.sse_heartbeat_seconds
            ):
                yield frame

    return event_stream(frames(), send_timeout=settings.sse_send_timeout_seconds)
