"""API shapes of the draft ledger (also the export's shape for drafts)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.core.schemas import ApiModel


def image_url(image_id: uuid.UUID | None) -> str | None:
    return f"/api/images/{image_id}" if image_id else None


class DraftVersionOut(ApiModel):
    version: int
    text: str
    hashtags: list[str]
    image_id: uuid.UUID | None
    image_url: str | None
    source_message_seq: int = Field(description="The user message that asked for this version")
    writer: str
    created_at: datetime


class PublishedPostOut(ApiModel):
    id: uuid.UUID
    draft_id: uuid.UUID | None
    session_id: str | None
    version: int
    platform: str
    text: str
    hashtags: list[str]
    image_id: uuid.UUID | None
    image_url: str | None
    publisher: str
    external_id: str | None
    published_at: datetime


class DraftOut(ApiModel):
    id: uuid.UUID
    session_id: str
    request_message_seq: int = Field(description="The user message with the original request")
    opened_message_seq: int = Field(description="The user message that opened this draft")
    parent_draft_id: uuid.UUID | None
    platform: str
    topic: str
    context: str | None
    with_image: bool
    status: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    versions: list[DraftVersionOut]
    published_post: PublishedPostOut | None


class DraftList(ApiModel):
    session_id: str
    drafts: list[DraftOut]


class PostList(ApiModel):
    posts: list[PublishedPostOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to read older posts; null at the end."
    )
