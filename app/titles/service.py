"""A new conversation's title, written by its model after the first exchange.

The turn closes first (its reply stored, its client told); then, in a task of its own, the
conversation's model is asked for a short title in the user's language, and a short
transaction of its own stores it, but only if the title is still the one taken from the
first message: a title the user set in the meantime is never overwritten. Without a model
that writes titles (the built-in templates, the small local model) the first message stays
the title, as before. A title that fails (the model errs, is slow, or answers with no
title) changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant.base import AssistantError
from app.conversations import service as conversations
from app.core.db import unit_of_work
from app.history import service as history
from app.turns.runner import ClosedReply, on_turn_closed

logger = logging.getLogger("app.titles")

TITLE_TIMEOUT_SECONDS = 30.0
TITLE_MAX_CHARS = 80
TITLE_MAX_WORDS = 12

WriteTitle = Callable[..., Awaitable[str]]

# A label some models put first ("Title: ..."), with an ASCII or a full-width colon.
_LABEL = re.compile(
    r"^\s*(title|titre|título|titolo|titel|заголовок)\s*[:\uff1a]\s*", re.IGNORECASE
)
# Quotes (straight, curly, guillemets) and Markdown marks around a title.
_EDGES = "\"'\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e*#`_ "


def tidy_title(raw: str) -> str | None:
    """The model's answer as a title: its first line, without a label, quotes, markup or a
    final period; None when that is no title (empty, or long enough to be an answer)."""
    line = next((part for part in raw.splitlines() if part.strip()), "")
    line = _LABEL.sub("", line.strip(_EDGES)).strip(_EDGES).rstrip(".").strip(_EDGES)
    line = " ".join(line.split())
    if not line or len(line.split()) > TITLE_MAX_WORDS:
        return None
    if len(line) > TITLE_MAX_CHARS:
        line = line[:TITLE_MAX_CHARS].rsplit(" ", 1)[0].rstrip(",;:-") + "…"
    return line


def title_writer(closed: ClosedReply) -> WriteTitle | None:
    """The conversation's model's `write_title`, when that model writes titles."""
    assistant: Any = closed.opened.assistant
    model_for = getattr(assistant, "model_for", None)
    writer = model_for(closed.opened.input).writer if model_for is not None else assistant
    write: WriteTitle | None = getattr(writer, "write_title", None)
    return write


def is_first_exchange(closed: ClosedReply) -> bool:
    """Whether the reply answers a conversation's first question: every message before the
    question is on its path, and none is but a system prompt. The page's first message;
    a new conversation of `/v1`, whose system prompt is its first message."""
    opened = closed.opened
    history = opened.input.history
    return (
        opened.input.dropped_through is None
        and opened.user_seq == len(history) + 1
        and all(m.role == "system" for m in history)
    )


@on_turn_closed
def after_first_exchange(closed: ClosedReply) -> Coroutine[Any, Any, None] | None:
    """A conversation's first reply stored: its model writes the title, after the turn."""
    if closed.status != "done" or not closed.text.strip() or not is_first_exchange(closed):
        return None
    write = title_writer(closed)
    if write is None:
        return None
    return write_title(closed, write)


async def write_title(closed: ClosedReply, write: WriteTitle) -> None:
    opened = closed.opened
    message = opened.input.message
    try:
        raw = await asyncio.wait_for(
            write(message=message, reply=closed.text), TITLE_TIMEOUT_SECONDS
        )
    except (AssistantError, TimeoutError) as exc:
        logger.info("no title for %s: %s", opened.session_id, exc)
        return
    title = tidy_title(raw)
    if title is None:
        logger.info("no title for %s: the model answered %r", opened.session_id, raw[:200])
        return
    async with unit_of_work(closed.sessionmaker, closed.bus) as db:
        await retitle(
            db=db,
            user_id=opened.user_id,
            session_id=opened.session_id,
            expected=conversations.title_from_message(message),
            title=title,
        )


async def retitle(
    *, db: AsyncSession, user_id: Any, session_id: str, expected: str, title: str
) -> bool:
    """Sets `title` if the conversation's title is still `expected` (the one its first
    message gave it); False when it changed (the user renamed it) or is gone."""
    chat_session = await conversations.owned_session(
        session=db, user_id=user_id, session_id=session_id, for_update=True
    )
    if chat_session is None or chat_session.title != expected or title == expected:
        return False
    await history.rename_session(session=db, chat_session=chat_session, title=title)
    return True
