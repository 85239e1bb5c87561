from __future__ import annotations

from datetime import datetime

from pydantic import Field, StrictInt

from app.core.schemas import ApiModel
from app.sharing.models import EXPIRY_DAYS_MAX


class ShareRequest(ApiModel):
    expires_in_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=EXPIRY_DAYS_MAX,
        description=f"Days the link works, 1 to {EXPIRY_DAYS_MAX}; null for until revoked. "
        "Left out when sharing again: the link keeps its expiry.",
    )


class SharedOut(ApiModel):
    """A live share link of one of your conversations."""

    url: str
    expires_at: datetime | None = Field(description="Null: until you revoke it.")


class ShareOut(SharedOut):
    token: str
    created_at: datetime
    refreshed_at: datetime = Field(description="When the snapshot was last taken.")


class ShareListItem(ShareOut):
    session_id: str
    title: str = Field(description="The title the link shows (as it was when shared).")
    message_count: int = Field(description="How many messages the link shows.")


class ShareList(ApiModel):
    items: list[ShareListItem]


class SharedMessageOut(ApiModel):
    role: str
    content: str
    created_at: datetime


class SharedConversationOut(ApiModel):
    """A shared conversation as it was when shared: no ids, no owner."""

    title: str
    shared_at: datetime
    expires_at: datetime | None
    messages: list[SharedMessageOut]
