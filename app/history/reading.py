"""Reading one conversation: a page of its messages, the reply still being written, and
its live share link (three owner-scoped queries, in this order)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import ChatMessage, ChatSession
from app.conversations.service import list_messages
from app.sharing.models import SharedLink
from app.sharing.service import live_link
from app.turns.models import ChatTurn
from app.turns.service import active_turn


@dataclass(frozen=True)
class SessionReading:
    chat_session: ChatSession
    messages: Sequence[ChatMessage]
    active_turn: ChatTurn | None
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
    owner. `next_after_seq` is null once the page reaches the last message."""
    user_id, session_id = chat_session.user_id, chat_session.id
    messages = await list_messages(
        session=session, user_id=user_id, session_id=session_id, after_seq=after_seq, limit=limit
    )
    turn = await active_turn(db=session, user_id=user_id, session_id=session_id)
    link = await live_link(session=session, user_id=user_id, session_id=session_id, now=now)
    last_seq = messages[-1].seq if messages else after_seq
    return SessionReading(
        chat_session=chat_session,
        messages=messages,
        active_turn=turn,
        link=link,
        next_after_seq=last_seq if last_seq < chat_session.message_count else None,
    )
