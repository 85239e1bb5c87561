"""What other requests and instances read of a turn: the one generating on a
conversation, one by id, a snapshot of its text for followers, and a request to stop it.
Each read is scoped to the owner: another user's turn is a missing one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant.base import Usage
from app.events.bus import EventBus, user_event
from app.turns.models import ChatTurn, TurnStatus
from app.turns.repository import TurnRepository


async def owned_turn(
    *, db: AsyncSession, user_id: uuid.UUID, session_id: str, turn_id: str
) -> ChatTurn | None:
    """A turn by id, session AND owner, or nothing: another user's turn is a missing one."""
    try:
        parsed = uuid.UUID(turn_id)
    except ValueError:
        return None
    return await TurnRepository(db, user_id).in_session(session_id=session_id, turn_id=parsed)


async def active_turn(*, db: AsyncSession, user_id: uuid.UUID, session_id: str) -> ChatTurn | None:
    return await TurnRepository(db, user_id).generating(session_id)


async def failed_turn(
    *, db: AsyncSession, user_id: uuid.UUID, session_id: str, user_seq: int
) -> ChatTurn | None:
    """The newest turn that failed to answer the user message `user_seq` (a crash mid-reply,
    a model error), with its partial reply and its reason."""
    return await TurnRepository(db, user_id).failed_at(session_id, user_seq)


async def request_stop(
    *, db: AsyncSession, bus: EventBus, turn: ChatTurn, now: datetime
) -> ChatTurn:
    """Ask the process running `turn` to stop it (it keeps what was written)."""
    if turn.status == TurnStatus.GENERATING and turn.cancel_requested_at is None:
        turn.cancel_requested_at = now
        await db.flush()
        bus.stage(db, user_event(turn.user_id, "turn_cancel", turnId=str(turn.id)))
    return turn


@dataclass(frozen=True)
class TurnSnapshot:
    """A turn as stored, with the part of its text after `offset`."""

    turn: ChatTurn
    tail: str  # the text after `offset`: the final reply once finished, else the partial
    length: int  # the whole text's length
    image_url: str | None
    reply_seq: int | None
    truncated: bool = False  # the reply was cut at MAX_REPLY_CHARS


async def snapshot(
    *, db: AsyncSession, user_id: uuid.UUID, turn_id: uuid.UUID, offset: int
) -> TurnSnapshot | None:
    repo = TurnRepository(db, user_id)
    turn = await repo.fresh(turn_id)
    if turn is None:
        return None
    if turn.status in (TurnStatus.DONE, TurnStatus.STOPPED) and turn.reply_seq is not None:
        reply = await repo.reply_after(
            session_id=turn.session_id, reply_seq=turn.reply_seq, offset=offset
        )
        if reply is None:  # the conversation was deleted meanwhile
            return None
        tail, length, image_url, truncated = reply
        return TurnSnapshot(turn, tail, length, image_url, turn.reply_seq, truncated)
    partial = turn.partial_reply or ""
    return TurnSnapshot(turn, partial[offset:], len(partial), None, None)


def usage_of(turn: ChatTurn) -> Usage | None:
    if turn.prompt_tokens is None and turn.completion_tokens is None:
        return None
    return Usage(turn.prompt_tokens or 0, turn.completion_tokens or 0)
