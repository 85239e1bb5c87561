"""A conversation as a tree: the active path, a message's versions, moving the head.

Every message names its parent (`parent_seq`); the session names the leaf of its active
branch (`head_seq`). A parent is always older than its children (`seq` grows), so walking
up from the head visits strictly decreasing seqs: a page of the path "after seq K" stops
walking at K, and the path is read by one recursive query, never row by row in Python.
Services flush; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations.models import ChatMessage, ChatSession
from app.core.errors import NotFoundError
from app.core.tenancy import owned
from app.events.bus import EventBus, user_event

# The active path's seqs after :after_seq, oldest first, at most :limit: a walk up from
# the head that stops below :after_seq (ancestors only get older).
_PATH_SEQS = sa.text(
    """
    WITH RECURSIVE path (seq, parent_seq) AS (
        SELECT seq, parent_seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id
          AND seq = CAST(:head_seq AS integer) AND seq > :after_seq
        UNION ALL
        SELECT m.seq, m.parent_seq FROM path p
        JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                           AND m.seq = p.parent_seq
        WHERE m.seq > :after_seq
    )
    SELECT seq FROM path ORDER BY seq LIMIT :limit
    """
)

# Every message whose parent is one of :parents, or a first message when :roots: each
# parent's children (the versions of a message are its parent's children).
_CHILDREN = sa.text(
    """
    SELECT parent_seq, array_agg(seq ORDER BY seq) AS seqs FROM chat_message
    WHERE session_id = :session_id AND user_id = :user_id
      AND parent_seq = ANY(CAST(:parents AS integer[]))
    GROUP BY parent_seq
    UNION ALL
    SELECT NULL, array_agg(seq ORDER BY seq) FROM chat_message
    WHERE CAST(:roots AS boolean) AND session_id = :session_id AND user_id = :user_id
      AND parent_seq IS NULL
    HAVING count(*) > 0
    """
)

# The newest leaf under :seq: from it, at each step down its newest child.
_NEWEST_LEAF = sa.text(
    """
    WITH RECURSIVE down (seq) AS (
        SELECT seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id AND seq = :seq
        UNION ALL
        SELECT c.seq FROM down d
        CROSS JOIN LATERAL (
            SELECT seq FROM chat_message
            WHERE session_id = :session_id AND user_id = :user_id AND parent_seq = d.seq
            ORDER BY seq DESC LIMIT 1
        ) c
    )
    SELECT max(seq) FROM down
    """
)

# The active path's seqs from the head up, newest first (whole, for exports and shares).
PATH_FROM = sa.text(
    """
    WITH RECURSIVE path (seq, parent_seq) AS (
        SELECT seq, parent_seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id AND seq = :head_seq
        UNION ALL
        SELECT m.seq, m.parent_seq FROM path p
        JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                           AND m.seq = p.parent_seq
    )
    SELECT seq FROM path
    """
)

# Which of the messages :seqs (one per session of :ids) lie on their session's active path.
# A session whose stored messages are all on the path (a single chain: as many messages as
# the head's depth) answers at once; any other is walked up from the head, stopping below
# the message (ancestors only get older), so the walk is as long as the path after it.
_ON_PATH = sa.text(
    """
    WITH RECURSIVE hit AS (
        SELECT s.id AS session_id, s.head_seq, q.seq AS match_seq,
               s.message_count = h.depth AS chain
        FROM unnest(CAST(:ids AS varchar[]), CAST(:seqs AS integer[])) AS q (session_id, seq)
        JOIN chat_session s ON s.id = q.session_id AND s.user_id = :user_id
        JOIN chat_message h ON h.session_id = s.id AND h.user_id = :user_id
                           AND h.seq = s.head_seq
    ),
    walk (session_id, seq, parent_seq, match_seq) AS (
        SELECT m.session_id, m.seq, m.parent_seq, hit.match_seq FROM hit
        JOIN chat_message m ON m.session_id = hit.session_id AND m.user_id = :user_id
                           AND m.seq = hit.head_seq
        WHERE NOT hit.chain AND m.seq >= hit.match_seq
        UNION ALL
        SELECT m.session_id, m.seq, m.parent_seq, w.match_seq FROM walk w
        JOIN chat_message m ON m.session_id = w.session_id AND m.user_id = :user_id
                           AND m.seq = w.parent_seq
        WHERE m.seq >= w.match_seq
    )
    SELECT session_id FROM hit WHERE chain
    UNION
    SELECT session_id FROM walk WHERE seq = match_seq
    """
)


async def path_page(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    after_seq: int,
    limit: int,
) -> Sequence[ChatMessage]:
    """A page of the active path, root to head: its messages with seq > `after_seq`."""
    if chat_session.head_seq is None:
        return []
    user_id, session_id = chat_session.user_id, chat_session.id
    seqs = (
        (
            await session.execute(
                _PATH_SEQS,
                {
                    "session_id": session_id,
                    "user_id": user_id,
                    "head_seq": chat_session.head_seq,
                    "after_seq": after_seq,
                    "limit": limit,
                },
            )
        )
        .scalars()
        .all()
    )
    if not seqs:
        return []
    rows = await session.execute(
        owned(ChatMessage, user_id)
        .where(col(ChatMessage.session_id) == session_id, col(ChatMessage.seq).in_(list(seqs)))
        .order_by(col(ChatMessage.seq))
    )
    return rows.scalars().all()


async def sibling_seqs(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, messages: Sequence[ChatMessage]
) -> dict[int | None, list[int]]:
    """For each parent of `messages` (None: first messages), its children's seqs."""
    parents = sorted({m.parent_seq for m in messages if m.parent_seq is not None})
    roots = any(m.parent_seq is None for m in messages)
    if not parents and not roots:
        return {}
    rows = await session.execute(
        _CHILDREN,
        {"session_id": session_id, "user_id": user_id, "parents": parents, "roots": roots},
    )
    return {parent: list(seqs) for parent, seqs in rows.all()}


async def path_seqs(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, head_seq: int | None
) -> list[int]:
    """The seqs of the path from the root to `head_seq`, oldest first."""
    if head_seq is None:
        return []
    rows = await session.execute(
        PATH_FROM, {"session_id": session_id, "user_id": user_id, "head_seq": head_seq}
    )
    return sorted(rows.scalars().all())


async def on_active_path(
    *, session: AsyncSession, user_id: uuid.UUID, seqs: dict[str, int]
) -> set[str]:
    """The ids of the sessions (of `seqs`: session id -> message seq) whose message lies on
    their active path, in one query for all of them."""
    if not seqs:
        return set()
    ids = list(seqs)
    rows = await session.execute(
        _ON_PATH, {"ids": ids, "seqs": [seqs[i] for i in ids], "user_id": user_id}
    )
    return set(rows.scalars().all())


async def move_head(*, session: AsyncSession, chat_session: ChatSession, seq: int) -> int:
    """Moves the head to the newest leaf under `seq` (at each step the newest child), and
    tells the owner's devices (`session`, change `head`). Returns the new head."""
    await session.refresh(chat_session, ["head_seq"], with_for_update=True)
    leaf = (
        await session.execute(
            _NEWEST_LEAF,
            {"session_id": chat_session.id, "user_id": chat_session.user_id, "seq": seq},
        )
    ).scalar_one_or_none()
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
