"""Step 3 of a chat turn, after the model wrote with no connection held: close it with
its reply, or fail it without one. Each is one short transaction that commits through the
unit of work (`app.core.db.commit`).

    close_turn   lock the session row, append the reply (`seq` n+1), let the assistant
                 write its records, mark the turn done (or stopped), commit.
    fail_turn    instead of closing: the user's message stays, the turn says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.assistant.base import Usage
from app.conversations import paths
from app.conversations.models import MessageRole
from app.core.db import commit, roll_back
from app.events.bus import EventBus, user_event
from app.turns.models import TurnStatus
from app.turns.opening import OpenedTurn
from app.turns.problems import SessionGoneError, TurnLostError, failed_event
from app.turns.repository import TurnRepository


@dataclass(frozen=True)
class ClosedTurn:
    reply_seq: int
    image_url: str | None
    status: str
    tool_calls: list[dict[str, Any]] | None = None  # a reply of /v1 that called tools


async def close_turn(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    opened: OpenedTurn,
    text: str,
    outcome: Any,
    stopped: bool,
    usage: Usage | None,
    now: datetime,
    truncated: bool = False,
) -> ClosedTurn:
    """Step 3 of a turn: the reply, the assistant's records and the turn's end, together.

    A `truncated` reply (cut at MAX_REPLY_CHARS) ends the turn `done`, marked so."""
    status = TurnStatus.STOPPED if stopped else TurnStatus.DONE
    async with sessionmaker() as db:
        repo = TurnRepository(db, opened.user_id)
        try:
            message_count, reply_seq = await repo.claim_reply(
                session_id=opened.session_id,
                turn_id=opened.turn_id,
                status=status,
                usage=usage,
                expected_head=opened.expected_head,
                now=now,
            )
            if message_count is None:  # deleted while the model wrote
                raise SessionGoneError(str(opened.turn_id))
            if reply_seq is None:
                raise TurnLostError(str(opened.turn_id))
            recorded = await opened.assistant.record(
                db=db,
                turn=opened.input,
                prepared=opened.prepared,
                outcome=outcome,
                stopped=stopped or truncated,  # cut off either way: only what was complete
            )
            meta: dict[str, Any] = {"assistant": opened.assistant.name, **recorded.metadata}
            tool_calls = recorded.metadata.get("toolCalls")
            reply_hash = None
            if opened.path_key is not None and opened.user_path_hash is not None:
                reply_hash = paths.chain(
                    opened.path_key,
                    opened.user_path_hash,
                    MessageRole.ASSISTANT.value,
                    paths.hashed_content(text, tool_calls),
                )
            if stopped:
                meta["stopped"] = True
            if truncated:
                meta["truncated"] = True
            if usage is not None:
                meta["usage"] = usage.as_json()
            await db.flush()  # what the assistant recorded, before the reply that names it
            bus.stage(
                db,
                user_event(
                    opened.user_id,
                    "message",
                    sessionId=opened.session_id,
                    seq=reply_seq,
                    role=MessageRole.ASSISTANT.value,
                ),
                user_event(
                    opened.user_id,
                    "turn",
                    sessionId=opened.session_id,
                    turnId=str(opened.turn_id),
                    status=status.value,
                ),
            )
            await repo.insert_reply(
                session_id=opened.session_id,
                seq=reply_seq,
                parent_seq=opened.user_seq,
                text=text,
                image_url=recorded.image_url,
                meta=meta,
                now=now,
                payloads=bus.take_notifies(db),
                path_hash=reply_hash,
            )
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    return ClosedTurn(
        reply_seq=reply_seq,
        image_url=recorded.image_url,
        status=status.value,
        tool_calls=tool_calls,
    )


async def fail_turn(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    opened: OpenedTurn,
    problem: dict[str, Any],
    partial: str,
    usage: Usage | None,
    now: datetime,
) -> bool:
    """Ends a turn without a reply. The user's message stays; the turn keeps the reason."""
    async with sessionmaker() as db:
        try:
            changed = await TurnRepository(db, opened.user_id).mark_failed(
                turn_id=opened.turn_id,
                session_id=opened.session_id,
                user_seq=opened.user_seq,
                problem=problem,
                now=now,
                partial=partial or None,
                usage=usage,
            )
            if changed:
                bus.stage(db, failed_event(opened.user_id, opened.session_id, opened.turn_id))
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    return changed
