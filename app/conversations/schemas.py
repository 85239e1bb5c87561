from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import ApiModel

MAX_CLIENT_MESSAGES = 1000
MAX_CONTEXT_CHARS = 8000


class ChatMessageIn(ApiModel):
    role: Literal["user", "assistant", "system"]
    content: str


class ChatRequest(ApiModel):
    """The original client's request. Only the last `user` message is read: the server
    holds the history, and earlier entries sent by a client are ignored, never trusted."""

    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_CLIENT_MESSAGES)
    context: str | None = Field(default=None, max_length=MAX_CONTEXT_CHARS)
    session_id: str | None = Field(default=None, max_length=200)


class ChatResponse(ApiModel):
    reply: str
    image_url: str | None = None
    session_id: str
    expired_session_id: str | None = Field(
        default=None,
        description="Present when the named session had expired: it was archived and this "
        "reply starts a new session.",
    )


class MessageOut(ApiModel):
    seq: int
    role: str
    content: str
    image_url: str | None
    created_at: datetime


class SessionOut(ApiModel):
    id: str
    title: str
    status: str
    created_at: datetime
    last_activity_at: datetime
    archived_at: datetime | None
    message_count: int


class SessionDetail(SessionOut):
    messages: list[MessageOut]
    next_after_seq: int | None = Field(
        default=None, description="Pass as after_seq to read the next page of messages; null at the end."
    )
