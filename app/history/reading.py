"""Reading one conversation: a page of its active path with each message's versions, the
reply still being written, and its live share link (owner-scoped queries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations import tree
from app.conversations.models import ChatMessage, ChatSession
from app.conversations.repository import ConversationRepository
from app.history.repository import HistoryRepository
from app.sharing.models import SharedLink
from app.sharing.service import live_link
from app.turns.models import ChatTurn, TurnStatus


@dataclass(frozen=True)
class SessionReading:
    chat_session: ChatSession
    messages: Sequence[ChatMessage]
    siblings: dict[int | None, list[int]]
    path_length: int
    active_turn: ChatTurn | None
    failed_turn: ChatTurn | None
    link: SharedLink | None
    next_after_seq: int | None


async def read_session(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    after_seq: int,
    limit: int,
    now: datetime,
) -> SessionReading:
    """`chat_session` is the caller's own (`OwnedSession`); every query is scoped to its
    owner. `next_after_seq` is null once the page reaches the head."""
    user_id, session_id = chat_session.user_id, chat_session.id
    page = await tree.path_page(
        session=session, chat_session=chat_session, after_seq=after_seq, limit=limit
    )
    messages, siblings = page.messages, page.siblings
    head = chat_session.head_seq
    if messages and messages[-1].seq == head:
        path_length = messages[-1].depth
    else:
        path_length = await active_path_length(session, chat_session)
    turn = await HistoryRepository(session, user_id).head_turn(session_id, head)
    generating = turn is not None and turn.status == TurnStatus.GENERATING
    link = await live_link(session=session, user_id=user_id, session_id=session_id, now=now)
    last_seq = messages[-1].seq if messages else None
    return SessionReading(
        chat_session=chat_session,
        messages=messages,
        siblings=siblings,
        path_length=path_length,
        active_turn=turn if generating else None,
        failed_turn=None if generating else turn,
        link=link,
        next_after_seq=last_seq if last_seq is not None and last_seq != head else None,
    )


async def active_path_length(session: AsyncSession, chat_session: ChatSession) -> int:
    """The active path's length: the head's depth (0 without messages)."""
    if chat_session.head_seq is None:
        return 0
    repo = ConversationRepository(session, chat_session.user_id)
    return int(await repo.depth_of(chat_session.id, chat_session.head_seq) or 0)
