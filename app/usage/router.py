"""The caller's token budgets: what is used and what is left, as the page shows it."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.dependencies import CurrentUser, RateLimit
from app.core.db import RequestSessionDep
from app.core.dependencies import ClockDep, SettingsDep
from app.usage import service
from app.usage.schemas import MyUsageOut, budget_out

router = APIRouter(prefix="/api", tags=["usage"], dependencies=[RateLimit("default")])


@router.get("/me/usage", response_model=MyUsageOut)
async def my_usage(
    user: CurrentUser, session: RequestSessionDep, settings: SettingsDep, clock: ClockDep
) -> MyUsageOut:
    """Tokens used today and this month (UTC) against the caller's budgets."""
    budgets = await service.standing(
        db=session, settings=settings, user_id=user.id, now=clock.now()
    )
    return MyUsageOut(budgets=[budget_out(b) for b in budgets])
