"""A conversation as a tree: the active path, a message's versions, moving the head.

Every message names its parent (`parent_seq`); the session names the leaf of its active
branch (`head_seq`). A parent is always older than its children (`seq` grows), so walking
up from the head visits strictly decreasing seqs: a page of the path "after seq K" stops
walking at K, and the path is read by one recursive query, never row by row in Python.
The statements are in `app.conversations.repository`. Services flush; the caller owns the
transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import ChatMessage, ChatSession
from app.conversations.repository import ConversationRepository
from app.core.errors import NotFoundError
from app.events.bus import EventBus, user_event


@dataclass(frozen=True)
class PathPage:
    messages: list[ChatMessage]
    siblings: dict[int | None, list[int]]  # each message's parent: its children's seqs


async def path_page(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    after_seq: int,
    limit: int,
) -> PathPage:
    """A page of the active path, root to head: its messages with seq > `after_seq`, and
    for each parent of them (None: first messages) its children's seqs, its versions."""
    if chat_session.head_seq is None:
        return PathPage(messages=[], siblings={})
    rows = await ConversationRepository(session, chat_session.user_id).path_page(
        chat_session.id, head_seq=chat_session.head_seq, after_seq=after_seq, limit=limit
    )
    return PathPage(
        messages=[message for message, _ in rows],
        siblings={message.parent_seq: versions for message, versions in rows},
    )


async def path_seqs(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, head_seq: int | None
) -> list[int]:
    """The seqs of the path from the root to `head_seq`, oldest first."""
    if head_seq is None:
        return []
    return await ConversationRepository(session, user_id).path_seqs(session_id, head_seq)


async def move_head(*, session: AsyncSession, chat_session: ChatSession, seq: int) -> int:
    """Moves the head to the newest leaf under `seq` (at each step the newest child), and
    tells the owner's devices (`session`, change `head`). Returns the new head."""
    await session.refresh(chat_session, ["head_seq"], with_for_update=True)
    repo = ConversationRepository(session, chat_session.user_id)
    leaf = await repo.newest_leaf(chat_session.id, seq)
    if leaf is None:
        raise NotFoundError(
            "No message with this seq in this conversation.", code="message_not_found"
        )
    if leaf != chat_session.head_seq:
        chat_session.head_seq = leaf
        await session.flush()
        EventBus.stage(
            session,
            user_event(
                chat_session.user_id,
                "session",
                sessionId=chat_session.id,
                change="head",
                headSeq=leaf,
            ),
        )
    return int(leaf)
