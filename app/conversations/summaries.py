"""Summaries of long conversations: which one a path's context uses.

A turn's context is the path from the new message's parent up, cut to the context budget
(`service.fit_path`). When the budget drops the oldest part, the newest summary stored
through one of the dropped messages (`PathSummary`, written by the model after a turn:
`app/summaries`) is sent in its place, as one system message before the messages that fit.
A summary through message X covers the path from the root to X, which is the same for
every branch through X, so any branch through X uses it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.context import SUMMARY_PREFIX
from app.conversations.models import PathSummary
from app.conversations.repository import ConversationRepository
from app.conversations.service import ContextLimits, FittedPath, fit_path

__all__ = ["SUMMARY_PREFIX", "SUMMARY_REACH", "fitted_path", "summarised_through", "usable"]

# How far above the newest dropped message a summary is looked for (a bound on the walk).
SUMMARY_REACH = 500


async def usable(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, dropped_through: int | None
) -> PathSummary | None:
    """The newest summary through a dropped message of the path (`dropped_through` and up),
    or None (nothing dropped, or no summary)."""
    if dropped_through is None:
        return None
    repo = ConversationRepository(session, user_id)
    return await repo.summary_on_path(session_id, dropped_through, reach=SUMMARY_REACH)


async def fitted_path(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    from_seq: int,
    limits: ContextLimits,
    more: int = 0,
) -> tuple[FittedPath, list[Any]]:
    """The context a turn after `from_seq` would send (the path from it up, fitted to
    `limits`), and the rows read, newest first: `more` rows beyond the budget's count, as
    (seq, role, content opened, image_url, parent_seq)."""
    repo = ConversationRepository(session, user_id)
    rows = await repo.path_up(session_id, from_seq, limits.max_messages + more)
    fitted = fit_path(rows, limits, lambda seq, sealed, key_id, plain: plain)
    return fitted, list(rows)


async def summarised_through(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    head_seq: int | None,
    limits: ContextLimits,
) -> int | None:
    """The last message the summary the next turn would send covers (None: no summary is
    sent, the messages it sends are the whole path or what fits, as without summaries).
    One index probe for a conversation without summaries."""
    if head_seq is None or not await ConversationRepository(session, user_id).has_summaries(
        session_id
    ):
        return None
    fitted, _ = await fitted_path(
        session=session, user_id=user_id, session_id=session_id, from_seq=head_seq, limits=limits
    )
    summary = await usable(
        session=session,
        user_id=user_id,
        session_id=session_id,
        dropped_through=fitted.dropped_through,
    )
    return summary.through_seq if summary is not None else None
