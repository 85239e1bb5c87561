"""A turn as a stream of events, from any instance, from any point.

Event ids are positions in the reply, so any instance can resume from any id without
keeping the events themselves:

    turn    id 0                 {"sessionId", "turnId", "expiredSessionId"?}
    queued  no id                {"position"}  (waiting in line for the model: 1 is next,
                                 null once its turn came; only from the instance running it)
    delta   id = end offset      {"text"}   (at most 16,384 characters each)
    done    id = length + 1      {"reply", "imageUrl", "sessionId", "seq", "stopped",
                                 "truncated", "usage"}
    error   id = length + 1      a problem+json body
    error   no id                `slow_reader`: the client read nothing for a while and was
                                 dropped; it resumes with Last-Event-ID (app.core.sse)

A client that saw id N asks for what comes after N: `Last-Event-ID: N`. Deltas may be cut
differently on a replay, but they always add up to the same text.

In the process that runs the turn, followers read the text from memory as it is written.
Elsewhere they read the partial reply the runner checkpoints, woken by `turn_progress`
events; the text is then up to TURN_CHECKPOINT_SECONDS behind, and catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.sse import HEARTBEAT, MAX_DELTA_CHARS, Frame
from app.events.bus import EventBus
from app.turns.following import TurnSnapshot, snapshot, usage_of
from app.turns.models import TurnStatus
from app.turns.problems import deleted_problem, interrupted_problem
from app.turns.recovery import fail_stale_turns
from app.turns.runner import LiveTurn, TurnRunner


@dataclass(frozen=True)
class FollowContext:
    runner: TurnRunner
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    clock: Clock
    heartbeat_seconds: float
    stale_seconds: float


def turn_frame(*, session_id: str, turn_id: uuid.UUID, expired: str | None) -> Frame:
    data: dict[str, Any] = {"sessionId": session_id, "turnId": str(turn_id)}
    if expired:
        data["expiredSessionId"] = expired
    return Frame("turn", data, 0)


async def follow(
    ctx: FollowContext,
    *,
    user_id: uuid.UUID,
    turn_id: uuid.UUID,
    after: int | None,
    end_on_drain: bool = True,
) -> AsyncIterator[Frame]:
    """Every event of the turn after `after` (all of them when None), then live ones.

    When the server is stopping, a stream ends early (`end_on_drain`): its client resumes
    on another instance with Last-Event-ID. A JSON answer waits for the end instead.
    """
    draining = (lambda: ctx.bus.hub.draining) if end_on_drain else (lambda: False)
    live = ctx.runner.get(turn_id)
    if live is not None and live.opened.user_id == user_id:
        async for frame in follow_live(
            live, after=after, heartbeat=ctx.heartbeat_seconds, draining=draining
        ):
            yield frame
        return
    async for frame in _follow_stored(
        ctx, user_id=user_id, turn_id=turn_id, after=after, draining=draining
    ):
        yield frame


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """True when `event` was set, False on timeout."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
        return True
    return False


async def follow_live(
    live: LiveTurn,
    *,
    after: int | None,
    heartbeat: float,
    draining: Callable[[], bool] = lambda: False,
) -> AsyncIterator[Frame]:
    opened = live.opened
    if after is None:
        yield turn_frame(
            session_id=opened.session_id, turn_id=live.id, expired=opened.expired_session_id
        )
    pos = after or 0
    place: int | None = None
    while True:
        changed = live.changed
        if live.queue_position != place and live.final is None:
            place = live.queue_position
            yield Frame("queued", {"position": place})
        # From the one shared text, a frame at a time: nothing is copied per follower
        # beyond the frame it is sending.
        while live.length > pos:
            text = live.text[pos : pos + MAX_DELTA_CHARS]
            pos += len(text)
            yield Frame("delta", {"text": text}, pos)
        if live.final is not None:
            kind, payload = live.final
            if after is None or after <= live.length:
                yield Frame(kind, payload, live.length + 1)
            return
        if draining():
            return
        if not await _wait(changed, heartbeat):
            yield HEARTBEAT


def _final_frame(snap: TurnSnapshot) -> Frame:
    """`done` or `error` of a finished turn; `snap` holds the whole text (offset 0)."""
    turn = snap.turn
    if turn.status == TurnStatus.FAILED:
        problem = dict(turn.error or interrupted_problem(turn.session_id))
        return Frame("error", problem, snap.length + 1)
    usage = usage_of(turn)
    return Frame(
        "done",
        {
            "reply": snap.tail,
            "imageUrl": snap.image_url,
            "sessionId": turn.session_id,
            "seq": snap.reply_seq,
            "stopped": turn.status == TurnStatus.STOPPED,
            "truncated": snap.truncated,
            "usage": usage.as_json() if usage else None,
        },
        snap.length + 1,
    )


async def _follow_stored(
    ctx: FollowContext,
    *,
    user_id: uuid.UUID,
    turn_id: uuid.UUID,
    after: int | None,
    draining: Callable[[], bool],
) -> AsyncIterator[Frame]:
    pos = after or 0
    first = True
    session_id = ""
    with ctx.bus.hub.watch_turn(str(turn_id)) as waker:
        while True:
            waker.clear()
            async with ctx.sessionmaker() as db:
                snap = await snapshot(db=db, user_id=user_id, turn_id=turn_id, offset=0)
            if snap is None:  # the conversation (and its turns) was deleted meanwhile
                yield Frame("error", deleted_problem(session_id), pos + 1)
                return
            turn = snap.turn
            session_id = turn.session_id
            if first and after is None:
                yield turn_frame(
                    session_id=turn.session_id, turn_id=turn.id, expired=turn.expired_session_id
                )
            first = False
            for start in range(pos, snap.length, MAX_DELTA_CHARS):
                piece = snap.tail[start : start + MAX_DELTA_CHARS]
                yield Frame("delta", {"text": piece}, start + len(piece))
            pos = max(pos, snap.length)
            if turn.status != TurnStatus.GENERATING:
                final = _final_frame(snap)
                if after is None or after <= snap.length:
                    yield final
                return
            stale_before = ctx.clock.now() - timedelta(seconds=ctx.stale_seconds)
            if turn.heartbeat_at < stale_before:
                # Its process went silent: fail it (or see that someone else did).
                await fail_stale_turns(
                    sessionmaker=ctx.sessionmaker,
                    bus=ctx.bus,
                    now=ctx.clock.now(),
                    stale_seconds=ctx.stale_seconds,
                )
                await _wait(waker, 0.2)
                continue
            if draining():
                return
            if not await _wait(waker, ctx.heartbeat_seconds):
                yield HEARTBEAT
