from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from app.core.schemas import ApiModel
from app.core.validation import PG_INT_MAX

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
    edit_seq: int | None = Field(
        default=None,
        ge=1,
        le=PG_INT_MAX,
        description="Send the message as a new version of this user message of `sessionId`: "
        "it gets that message's parent, and the head moves to it.",
    )
    model: str | None = Field(
        default=None,
        max_length=100,
        description="The model to answer (an id of GET /api/models): a new conversation "
        "takes it; an existing one switches to it. Absent: the conversation's model, or the "
        "default one.",
    )
    restore: bool = Field(
        default=False,
        description="With the `sessionId` of an archived conversation: restore it and append "
        "the message to it, in the same transaction (no new conversation, no "
        "`expiredSessionId`). An unknown `sessionId` is then a 404; an active one is "
        "continued as usual.",
    )

    temporary: bool = Field(
        default=False,
        description="Start a temporary conversation (no `sessionId`): it is in no history "
        "list, search, export of everything or share, and is deleted for good once idle "
        "past the session TTL.",
    )

    @model_validator(mode="after")
    def _restore_names_a_session(self) -> ChatRequest:
        if self.restore and not self.session_id:
            raise ValueError("`restore` needs the `sessionId` of the conversation to restore.")
        return self


class RegenerateRequest(ApiModel):
    """`POST /api/sessions/{id}/messages/{seq}/regenerate`: an optional body."""

    context: str | None = Field(default=None, max_length=MAX_CONTEXT_CHARS)


class ChatResponse(ApiModel):
    reply: str
    image_url: str | None = None
    session_id: str
    seq: int | None = Field(
        default=None, description="The reply's seq: present for an edit or a regenerated reply."
    )
    expired_session_id: str | None = Field(
        default=None,
        description="Present when the named session had expired: it was archived and this "
        "reply starts a new session.",
    )


class RetentionRunOut(ApiModel):
    at: datetime
    days: int = Field(description="The retention applied, in days.")
    trashed: int = Field(description="Conversations moved to the trash by this run.")


class AdminRetentionRunOut(RetentionRunOut):
    user_id: str


class RetentionIn(ApiModel):
    days: int | None = Field(
        description="Delete conversations this many days after their last activity: 30, 90, "
        "180 or 365; null: off."
    )


class RetentionOut(ApiModel):
    days: int | None = Field(description="Your choice; null: off.")
    max_days: int | None = Field(description="The operator's maximum (RETENTION_MAX_DAYS).")
    effective_days: int | None = Field(description="What applies: your choice, capped.")
    runs: list[RetentionRunOut] = Field(description="The latest runs that moved any, newest first.")


class RetentionPreviewOut(ApiModel):
    days: int | None
    effective_days: int | None
    conversations: int = Field(description="How many conversations it would delete now.")
