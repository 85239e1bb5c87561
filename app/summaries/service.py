"""The start of a long conversation, summarised by its model after a turn.

When the next turn on a path would drop messages from its context (CONTEXT_MAX_MESSAGES,
CONTEXT_MAX_CHARS), the conversation's model summarises them once the turn has closed (its
reply stored, its client told), in a task of its own: a short transaction reads the path,
none is held while the model writes, another short one stores the summary
(`path_summary`, sealed with ENCRYPTION_KEYS). The next turn then sends the summary in place
of what it drops (`app.conversations.summaries`).

A summary covers the path from the root through its last message, so it is written once
and reused by every later turn and every branch through that message; a newer one is
written from the one before it and the messages after it. Without a model that writes
summaries (the built-in templates, `/v1`, whose clients send their own messages) nothing
is written and the oldest messages are dropped, as before. A summary that fails (the model
errs, is slow, or answers with nothing) changes nothing: the next turn tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app.assistant.base import AssistantError, summary_writer
from app.conversations import summaries
from app.conversations.repository import ConversationRepository
from app.conversations.service import ContextLimits
from app.core.db import unit_of_work
from app.turns.runner import ClosedReply, on_turn_closed

logger = logging.getLogger("app.summaries")

SUMMARY_TIMEOUT_SECONDS = 60.0
SUMMARY_MAX_CHARS = 2000  # what is stored and sent of a summary
# What one summary reads: at most this many messages past the budget, this many chars.
SUMMARY_INPUT_MAX_MESSAGES = 200
SUMMARY_INPUT_MAX_CHARS = 24_000

WriteSummary = Callable[..., Awaitable[str]]


def write_summary_of(closed: ClosedReply) -> WriteSummary | None:
    """The conversation's model's `write_summary`, when that model writes summaries."""
    write: WriteSummary | None = summary_writer(closed.opened.assistant, closed.opened.input)
    return write


def next_turn_fits(closed: ClosedReply, limits: ContextLimits) -> bool:
    """True when the next turn after this reply surely drops nothing: this turn dropped
    nothing, and its history with the message and the reply is within the budget."""
    turn = closed.opened.input
    if turn.dropped_through is not None:
        return False
    count = len(turn.history) + 2
    chars = sum(len(m.content) for m in turn.history) + len(turn.message) + len(closed.text)
    return count <= limits.max_messages and chars <= limits.max_chars


@on_turn_closed
def after_turn(closed: ClosedReply) -> Coroutine[Any, Any, None] | None:
    """A reply stored: when the next turn would drop part of the path, and no summary
    covers exactly that part yet, the model summarises it, after the turn."""
    limits = closed.opened.limits
    if closed.reply_seq is None or limits is None or not closed.text.strip():
        return None
    write = write_summary_of(closed)
    if write is None or next_turn_fits(closed, limits):
        return None
    return summarise(closed, write, limits)


async def summarise(closed: ClosedReply, write: WriteSummary, limits: ContextLimits) -> None:
    opened = closed.opened
    user_id, session_id = opened.user_id, opened.session_id
    assert closed.reply_seq is not None
    # 1. What the next turn would drop, and the summary it would use (a short read).
    async with unit_of_work(closed.sessionmaker, closed.bus) as db:
        fitted, rows = await summaries.fitted_path(
            session=db,
            user_id=user_id,
            session_id=session_id,
            from_seq=closed.reply_seq,
            limits=limits,
            more=SUMMARY_INPUT_MAX_MESSAGES,
        )
        through = fitted.dropped_through
        if through is None:
            return
        prior = await summaries.usable(
            session=db, user_id=user_id, session_id=session_id, dropped_through=through
        )
        prior_seq = prior.through_seq if prior is not None else 0
        prior_text = prior.text if prior is not None else None
    if prior_seq == through:
        return  # written already, by an earlier turn or another branch through it
    # The dropped messages after the prior summary, newest first, within the input budget.
    start = next((i for i, row in enumerate(rows) if row[0] == through), None)
    if start is None:
        return
    part: list[tuple[str, str]] = []
    budget = SUMMARY_INPUT_MAX_CHARS
    for seq, role, content, *_ in rows[start:]:
        if seq <= prior_seq:
            break
        if role not in ("user", "assistant") or not content:
            continue
        if part and len(content) > budget:
            break
        budget -= len(content)
        part.append((role, content))
    part.reverse()
    # 2. The model writes, no connection held.
    try:
        raw = await asyncio.wait_for(
            write(previous=prior_text, messages=part),
            SUMMARY_TIMEOUT_SECONDS,
        )
    except (AssistantError, TimeoutError) as exc:
        logger.info("no summary for %s through %s: %s", session_id, through, exc)
        return
    text = raw.strip()[:SUMMARY_MAX_CHARS].strip()
    if not text:
        logger.info("no summary for %s through %s: an empty answer", session_id, through)
        return
    # 3. Stored in a short transaction of its own (nothing, when the conversation is gone).
    async with unit_of_work(closed.sessionmaker, closed.bus) as db:
        repo = ConversationRepository(db, user_id)
        if await repo.get(session_id) is None:
            return
        await repo.add_summary(
            session_id=session_id,
            through_seq=through,
            text=text,
            model=opened.input.model or _model_id(write),
            now=closed.clock.now(),
        )


def _model_id(write: WriteSummary) -> str | None:
    model = getattr(getattr(write, "__self__", None), "model_id", None)
    return model if isinstance(model, str) else None
