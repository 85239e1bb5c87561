"""Reading one conversation: its messages, its usage, and a reply still being written."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.auth.dependencies import RateLimit
from app.conversations import tree
from app.conversations.dependencies import OwnedSession
from app.conversations.service import ContextLimits
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SettingsDep
from app.core.validation import PG_INT_MAX
from app.drafts import ledger
from app.history.reading import SessionReading
from app.history.reading import read_session as read_session_page
from app.history.schemas import (
    ActiveTurnOut,
    FailedTurnOut,
    HeadMove,
    MessageOut,
    SessionDetail,
    UsageOut,
)
from app.sharing.dependencies import ShareBase, shared_out
from app.turns.models import ChatTurn

router = APIRouter(prefix="/api", tags=["sessions"], dependencies=[RateLimit("default")])

MESSAGE_PAGE_DEFAULT = 200
MESSAGE_PAGE_MAX = 1000


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def read_session(
    chat_session: OwnedSession,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    base: ShareBase,
    after_seq: Annotated[
        int, Query(ge=0, le=PG_INT_MAX, description="Return messages after this seq")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MESSAGE_PAGE_MAX)] = MESSAGE_PAGE_DEFAULT,
    drafts: Annotated[
        bool, Query(description="Also return its drafts (`drafts`): one request opens it")
    ] = False,
) -> SessionDetail:
    now = clock.now()
    reading = await read_session_page(
        session=session,
        chat_session=chat_session,
        after_seq=after_seq,
        limit=limit,
        now=now,
        limits=context_limits(settings),
    )
    detail = _detail(reading, base=base, now=now)
    if drafts:
        detail.drafts = await ledger.list_drafts(
            session=session, user_id=chat_session.user_id, session_id=chat_session.id
        )
    return detail


@router.put(
    "/sessions/{session_id}/head",
    response_model=SessionDetail,
    responses={404: {"description": "No such conversation or message (or not yours)"}},
)
async def move_head(
    body: HeadMove,
    chat_session: OwnedSession,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    base: ShareBase,
) -> SessionDetail:
    """Moves the head to the newest leaf under `seq` (at each step the newest child): the
    way to switch between versions. Answers like `GET /api/sessions/{id}`; the owner's
    other devices get a `session` event with `change: "head"`."""
    await tree.move_head(session=session, chat_session=chat_session, seq=body.seq)
    now = clock.now()
    reading = await read_session_page(
        session=session,
        chat_session=chat_session,
        after_seq=0,
        limit=MESSAGE_PAGE_DEFAULT,
        now=now,
        limits=context_limits(settings),
    )
    return _detail(reading, base=base, now=now)


def context_limits(settings: Settings) -> ContextLimits:
    return ContextLimits(settings.context_max_messages, settings.context_max_chars)


def _model_of(role: str, meta: dict[str, Any]) -> str | None:
    model = meta.get("model") if role == "assistant" else None
    return model if isinstance(model, str) else None


def _failed(turn: ChatTurn | None) -> FailedTurnOut | None:
    if turn is None:
        return None
    error = turn.error or {}
    return FailedTurnOut(
        turn_id=str(turn.id),
        user_seq=turn.user_seq,
        code=str(error.get("code", "turn_failed")),
        detail=str(error.get("detail", "The assistant could not answer.")),
        partial_reply=turn.partial_reply or None,
        finished_at=turn.finished_at,
    )


def _detail(reading: SessionReading, *, base: str, now: datetime) -> SessionDetail:
    chat_session, turn, link = reading.chat_session, reading.active_turn, reading.link
    prompt, completion = chat_session.prompt_tokens, chat_session.completion_tokens
    return SessionDetail(
        id=chat_session.id,
        title=chat_session.title,
        status=chat_session.status,
        created_at=chat_session.created_at,
        last_activity_at=chat_session.last_activity_at,
        archived_at=chat_session.archived_at,
        trashed_at=chat_session.trashed_at,
        purge_at=chat_session.purge_at,
        pinned=chat_session.pinned,
        tags=list(chat_session.tags),
        imported_from=chat_session.imported_from,
        api_client=chat_session.api_client,
        model=chat_session.model,
        temporary=chat_session.temporary,
        message_count=reading.path_length,
        head_seq=chat_session.head_seq,
        summarised_through=reading.summarised_through,
        usage=UsageOut(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        ),
        active_turn=(
            ActiveTurnOut(
                turn_id=str(turn.id),
                status=turn.status,
                started_at=turn.started_at,
                user_seq=turn.user_seq,
            )
            if turn is not None
            else None
        ),
        failed_turn=_failed(reading.failed_turn),
        messages=[
            MessageOut(
                seq=m.seq,
                parent_seq=m.parent_seq,
                sibling_seqs=reading.siblings.get(m.parent_seq, [m.seq]),
                role=m.role,
                content=m.content,
                image_url=m.image_url,
                created_at=m.created_at,
                stopped=bool(m.meta.get("stopped")),
                truncated=bool(m.meta.get("truncated")),
                tool_calls=m.meta.get("toolCalls"),
                tool_call_id=m.meta.get("toolCallId"),
                model=_model_of(m.role, m.meta),
            )
            for m in reading.messages
        ],
        next_after_seq=reading.next_after_seq,
        shared=(
            shared_out(base=base, token=link.token, expires_at=link.expires_at, now=now)
            if link is not None
            else None
        ),
    )
