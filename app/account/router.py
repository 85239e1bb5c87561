"""The account as a whole: delete it, download all of it, and where it stands in every
rate limit. Each route parses, calls one service and shapes the answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.account import service
from app.auth import service as auth_service
from app.auth.dependencies import CurrentUser, ManagerDep, RateLimit, SessionUser
from app.auth.manager import AUTH_COOKIE_NAME
from app.auth.schemas import CurrentPassword
from app.conversations import retention
from app.conversations.schemas import RetentionIn, RetentionOut, RetentionPreviewOut
from app.core.db import RequestSessionDep, SessionDep
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.core.http import client_ip
from app.exports import naming
from app.exports.dependencies import DownloadSlotDep
from app.exports.responses import DownloadResponse, attachment
from app.ratelimit.dependencies import RateLimitsDep
from app.ratelimit.runtime import Quota
from app.ratelimit.schemas import MyLimitsOut, QuotaOut

router = APIRouter()


@router.delete(
    "/users/me", status_code=204, tags=["users"], dependencies=[RateLimit("credentials")]
)
async def delete_me(
    body: CurrentPassword,
    user: SessionUser,
    manager: ManagerDep,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Deletes the account and every row it owns (its API keys too), in one transaction.
    Needs the password and a real sign-in (not an API key)."""
    await auth_service.require_current_password(manager, user, body.current_password)
    await service.delete_account(session=session, user_id=user.id, now=clock.now())
    response = Response(status_code=204)
    response.delete_cookie(AUTH_COOKIE_NAME, path="/")
    return response


@router.get(
    "/api/me/data",
    tags=["account"],
    responses={
        200: {"content": {"application/zip": {}}, "description": "A ZIP archive"},
        429: {"description": "Too many requests, or too many downloads in progress at once"},
    },
    dependencies=[RateLimit("export"), DownloadSlotDep],
)
async def download_my_data(
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
) -> DownloadResponse:
    """Everything of yours: the ZIP export of every conversation (temporary ones are not
    kept, so not in it) plus `account.json` (profile, sign-ins, settings: rate-limit
    overrides, retention and every retention run's counts)."""
    now = clock.now()
    produce = await service.my_data(
        session=session, sessionmaker=sessionmaker, user=user, settings=settings, now=now
    )
    name = f"chatkeep-my-data-{naming.day(now)}.zip"
    return attachment(produce, media_type="application/zip", file_name=name)


@router.get("/api/me/limits", response_model=MyLimitsOut, tags=["rate limits"])
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


@router.get("/api/me/retention", response_model=RetentionOut, tags=["account"])
async def my_retention(
    user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> RetentionOut:
    """Your retention setting, the operator's maximum, and what the latest runs removed."""
    return await retention.standing(
        session=session, user_id=user.id, maximum=settings.retention_max_days
    )


@router.put("/api/me/retention", response_model=RetentionOut, tags=["account"])
async def set_my_retention(
    body: RetentionIn, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> RetentionOut:
    """Sets your retention (30, 90, 180 or 365 days; null: off). The next run applies it."""
    await retention.choose(session, user.id, body.days)
    return await retention.standing(
        session=session, user_id=user.id, maximum=settings.retention_max_days
    )


@router.get("/api/me/retention/preview", response_model=RetentionPreviewOut, tags=["account"])
async def preview_my_retention(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    days: Annotated[int | None, Query()] = None,
) -> RetentionPreviewOut:
    """How many conversations the setting `days` (left out: off) would delete now."""
    n = await retention.preview(
        session=session,
        user_id=user.id,
        days=days,
        maximum=settings.retention_max_days,
        now=clock.now(),
    )
    return RetentionPreviewOut(
        days=days,
        effective_days=retention.effective_days(days, settings.retention_max_days),
        conversations=n,
    )
