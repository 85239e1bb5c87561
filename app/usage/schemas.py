from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.core.schemas import ApiModel
from app.usage.service import Budget

MAX_TOKENS = 10**15


class BudgetOut(ApiModel):
    period: str = Field(description="day or month (UTC)")
    limit: int | None = Field(description="Tokens in the period; null: unlimited")
    used: int = Field(description="Tokens used in the period so far")
    remaining: int | None = Field(description="Tokens left; null: unlimited")
    reset_at: datetime = Field(description="When the period starts again")
    overridden: bool = Field(description="True when an administrator set this user's figure")


def budget_out(b: Budget) -> BudgetOut:
    return BudgetOut(
        period=b.period,
        limit=b.limit,
        used=b.used,
        remaining=b.remaining,
        reset_at=b.resets_at,
        overridden=b.overridden,
    )


class MyUsageOut(ApiModel):
    budgets: list[BudgetOut]


class BudgetIn(ApiModel):
    """A user's own budget: a number sets it (0: unlimited), null restores the configured."""

    tokens_per_day: int | None = Field(default=None, ge=0, le=MAX_TOKENS)
    tokens_per_month: int | None = Field(default=None, ge=0, le=MAX_TOKENS)


class BudgetAdminOut(ApiModel):
    user_id: str
    tokens_per_day: int | None = Field(description="This user's own figure; null: configured")
    tokens_per_month: int | None
    configured: dict[str, int] = Field(
        description="QUOTA_TOKENS_PER_DAY and QUOTA_TOKENS_PER_MONTH (0: unlimited)"
    )
    budgets: list[BudgetOut] = Field(description="Where the user stands now")


class ModelUsageOut(ApiModel):
    model: str | None = Field(description="The model that wrote the replies; null: not recorded")
    turns: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    tokens_today: int
    tokens_this_month: int


class UserUsageOut(ApiModel):
    user_id: str
    email: str
    created_at: datetime
    conversations: int = Field(description="Conversations of every status, trash included")
    messages: int = Field(description="Messages stored in them")
    last_active_at: datetime | None = Field(description="The latest activity in a conversation")
    total_tokens: int
    tokens_today: int
    tokens_this_month: int
    budget: dict[str, int | None] = Field(
        description="The user's own tokensPerDay / tokensPerMonth; null: configured"
    )
    models: list[ModelUsageOut] = Field(description="Tokens by the model that wrote the reply")


class UsagePageOut(ApiModel):
    items: list[UserUsageOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")
