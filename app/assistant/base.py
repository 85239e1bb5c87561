"""The seam between the chat API and whatever writes the replies."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class HistoryMessage:
    seq: int
    role: str
    content: str
    image_url: str | None = None


@dataclass(frozen=True)
class AssistantTurn:
    """Everything an assistant may use to answer one message.

    `history` is the bounded, server-side history before this message; `db` is the turn's
    transaction, for assistants that keep records (drafts) beside the messages.
    """

    user_id: uuid.UUID
    session_id: str
    message_seq: int
    history: Sequence[HistoryMessage]
    message: str
    context: str | None
    db: AsyncSession
    now: datetime


@dataclass
class AssistantReply:
    content: str
    image_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class AssistantError(Exception):
    """The assistant could not answer; the user's message is kept all the same."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Assistant(Protocol):
    name: str

    async def reply(self, turn: AssistantTurn) -> AssistantReply: ...


# Contract for implementations: raise AssistantError before writing anything to `db`, or
# write inside `db.begin_nested()` so a failure leaves no half-written records. The turn
# then keeps the user's message and reports the failure. The message rows themselves are
# written after `reply` returns: records that refer to the asking message use
# `message_seq`, not a foreign key.
