"""Token budgets: where a user stands today and this month, the check a turn passes to
open, the administrator's per-user figures, and the admin usage view.

Days and months are UTC. A turn's tokens count from when it started. The check runs when
a turn opens, so the turn that crosses a budget is answered in full; the next is refused
with 429 `quota_exceeded` until the period resets, and nothing of it is stored.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core import cursors
from app.core.config import Settings
from app.core.errors import AppError
from app.turns.start import turn_open_check
from app.usage.repository import (
    BudgetRepository,
    ModelTokensRow,
    UsageOperatorRepository,
    UserUsageRow,
)

PERIODS = ("day", "month")


class QuotaExceededError(AppError):
    status_code = 429
    code = "quota_exceeded"
    title = "Token budget used up"


def day_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


def next_month(now: datetime) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class Budget:
    """One period's budget: `limit` None is unlimited."""

    period: str  # "day" | "month"
    limit: int | None
    used: int
    resets_at: datetime
    overridden: bool

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def _limit(own: int | None, configured: int) -> tuple[int | None, bool]:
    value = configured if own is None else own
    return (value or None), own is not None


async def standing(
    *, db: AsyncSession, settings: Settings, user_id: uuid.UUID, now: datetime
) -> list[Budget]:
    """The user's day and month budgets, with what they used of each."""
    row = await BudgetRepository(db, user_id).standing(
        day_start=day_start(now), month_start=month_start(now)
    )
    day, day_own = _limit(row.tokens_per_day, settings.quota_tokens_per_day)
    month, month_own = _limit(row.tokens_per_month, settings.quota_tokens_per_month)
    return [
        Budget("day", day, row.used_today, day_start(now) + timedelta(days=1), day_own),
        Budget("month", month, row.used_this_month, next_month(now), month_own),
    ]


@turn_open_check
async def check_turn_open(
    *, db: AsyncSession, settings: Settings, user_id: uuid.UUID, now: datetime
) -> None:
    """Refuses a turn when the user has used a budget up (429 `quota_exceeded`, with the
    time it resets); before anything of the turn is written."""
    budgets = await standing(db=db, settings=settings, user_id=user_id, now=now)
    over = [b for b in budgets if b.exhausted]
    if not over:
        return
    # Sending works again when every exhausted period has reset.
    resets_at = max(b.resets_at for b in over)
    retry_after = max(1, math.ceil((resets_at - now).total_seconds()))
    first = over[0]
    raise QuotaExceededError(
        f"You have used your {'daily' if first.period == 'day' else 'monthly'} budget of "
        f"{first.limit} tokens. Nothing was saved; you can send again after "
        f"{resets_at.isoformat()}.",
        headers={"Retry-After": str(retry_after)},
        extra={
            "period": first.period,
            "limit": first.limit,
            "used": first.used,
            "resetAt": resets_at.isoformat().replace("+00:00", "Z"),
            "retryAfter": retry_after,
        },
    )


# --- the administrator's per-user figures ------------------------------------------------


@dataclass(frozen=True)
class OwnBudget:
    tokens_per_day: int | None
    tokens_per_month: int | None


async def get_budget(*, db: AsyncSession, user_id: uuid.UUID) -> OwnBudget:
    row = await BudgetRepository(db, user_id).get()
    if row is None:
        return OwnBudget(None, None)
    return OwnBudget(row.tokens_per_day, row.tokens_per_month)


async def put_budget(
    *,
    db: AsyncSession,
    user_id: uuid.UUID,
    tokens_per_day: int | None,
    tokens_per_month: int | None,
    now: datetime,
) -> OwnBudget:
    """Sets the user's own figures (None: the configured one; 0: unlimited); both None
    removes the row."""
    repo = BudgetRepository(db, user_id)
    if tokens_per_day is None and tokens_per_month is None:
        await repo.delete()
    else:
        await repo.put(tokens_per_day=tokens_per_day, tokens_per_month=tokens_per_month, now=now)
    await db.flush()
    return OwnBudget(tokens_per_day, tokens_per_month)


# --- the admin usage view ------------------------------------------------------------------


@dataclass(frozen=True)
class UserUsage:
    user: UserUsageRow
    models: list[ModelTokensRow]


@dataclass(frozen=True)
class UsagePage:
    items: list[UserUsage]
    next_cursor: str | None


async def usage_page(
    *, db: AsyncSession, cursor: str | None, limit: int, now: datetime
) -> UsagePage:
    """Every user's usage, a page at a time in order of sign-up (operator: all users)."""
    after = cursors.decode_time_id(cursor) if cursor else None
    report = UsageOperatorRepository(db)
    rows = await report.users_page(after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    tokens = await report.tokens_by_model(
        user_ids=[r.user_id for r in rows], day_start=day_start(now), month_start=month_start(now)
    )
    by_user: dict[uuid.UUID, list[ModelTokensRow]] = {}
    for t in tokens:
        by_user.setdefault(t.user_id, []).append(t)
    return UsagePage(
        items=[UserUsage(r, by_user.get(r.user_id, [])) for r in rows],
        next_cursor=(
            cursors.encode_time_id(rows[-1].created_at, rows[-1].user_id) if more and rows else None
        ),
    )
