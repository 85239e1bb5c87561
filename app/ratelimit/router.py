"""GET /api/me/limits: where the caller stands in every policy."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request

from app.auth.dependencies import CurrentUser
from app.core.db import RequestSessionDep
from app.core.http import client_ip
from app.ratelimit.dependencies import RateLimitsDep
from app.ratelimit.runtime import Quota
from app.ratelimit.schemas import MyLimitsOut, QuotaOut

router = APIRouter(tags=["rate limits"])


@router.get("/api/me/limits", response_model=MyLimitsOut)
async def my_limits(
    request: Request, user: CurrentUser, session: RequestSessionDep, limits: RateLimitsDep
) -> MyLimitsOut:
    """Where the caller stands in every policy. Reading this counts against nothing."""
    quotas = await limits.quotas(
        user_id=user.id, ip=client_ip(request), email=user.email, session=session
    )
    return MyLimitsOut(enabled=limits.enabled, policies=[_quota_out(q) for q in quotas])


def _quota_out(q: Quota) -> QuotaOut:
    return QuotaOut(
        name=q.policy,
        limit=q.limit,
        window=q.window,
        window_seconds=q.window_seconds,
        remaining=q.remaining,
        reset_at=datetime.fromtimestamp(q.reset_at, UTC) if q.reset_at else None,
        overridden=q.overridden,
        key=q.key,
    )
