from __future__ import annotations

from datetime import datetime

from pydantic import Field, RootModel

from app.core.schemas import ApiModel


class QuotaOut(ApiModel):
    name: str = Field(description="Policy name: chat, export, import, auth or default")
    limit: str = Field(description="This window in `limits` notation, e.g. 20/minute")
    window: str = Field(description="The window: minute, hour, day, or e.g. 5minutes")
    window_seconds: int
    remaining: int | None = Field(description="Requests left now; null if not known")
    reset_at: datetime | None = Field(description="When the next request frees up in this window")
    overridden: bool = Field(description="True when a per-user override sets this policy")
    key: str = Field(description="What is counted: user, or ip+email for auth")


class MyLimitsOut(ApiModel):
    enabled: bool
    policies: list[QuotaOut]


class OverridesIn(RootModel[dict[str, str | None]]):
    """Policy name -> `limits` string, or null for the configured value."""


class OverridesOut(ApiModel):
    user_id: str
    overrides: dict[str, str | None] = Field(
        description="Every per-user policy; null where the configured value applies"
    )
    configured: dict[str, str]
