"""GET /api/me/limits for every user; per-user overrides for superusers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from app.auth.dependencies import CurrentUser, SuperUser
from app.auth.passwords import normalize_email
from app.conversations.dependencies import ClockDep
from app.core.db import RequestSessionDep, SessionDep
from app.ratelimit import service
from app.ratelimit.dependencies import RateLimit, client_ip, rate_limits
from app.ratelimit.policies import USER_POLICIES
from app.ratelimit.schemas import MyLimitsOut, OverridesIn, OverridesOut, QuotaOut

router = APIRouter(tags=["rate limits"])
admin = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[RateLimit("default")])


@router.get("/api/me/limits", response_model=MyLimitsOut)
async def my_limits(request: Request, user: CurrentUser, session: RequestSessionDep) -> MyLimitsOut:
    """Where the caller stands in every policy. Reading this counts against nothing."""
    limits = rate_limits(request)
    quotas = await limits.quotas(
        user_id=user.id,
        ip=client_ip(request),
        email=normalize_email(user.email),
        session=session,
    )
    return MyLimitsOut(
        enabled=limits.enabled,
        policies=[
            QuotaOut(
                name=q.policy,
                limit=q.limit,
                window=q.window,
                window_seconds=q.window_seconds,
                remaining=q.remaining,
                reset_at=datetime.fromtimestamp(q.reset_at, UTC) if q.reset_at else None,
                overridden=q.overridden,
                key=q.key,
            )
            for q in quotas
        ],
    )


def _out(request: Request, user_id: uuid.UUID, overrides: dict[str, str]) -> OverridesOut:
    limits = rate_limits(request)
    return OverridesOut(
        user_id=str(user_id),
        overrides={name: overrides.get(name) for name in USER_POLICIES},
        configured={name: limits.policies[name].text for name in USER_POLICIES},
    )


@admin.get("/users/{user_id}/limits", response_model=OverridesOut)
async def get_user_limits(
    user_id: uuid.UUID, request: Request, _: SuperUser, session: SessionDep
) -> OverridesOut:
    overrides = await service.get_overrides(session=session, user_id=user_id)
    return _out(request, user_id, overrides)


@admin.put("/users/{user_id}/limits", response_model=OverridesOut)
async def put_user_limits(
    user_id: uuid.UUID,
    body: OverridesIn,
    request: Request,
    _: SuperUser,
    session: SessionDep,
    clock: ClockDep,
) -> OverridesOut:
    """Replaces the user's overrides: a string sets one, null or absent restores the default."""
    overrides = await service.replace_overrides(
        session=session, user_id=user_id, overrides=body.root, now=clock.now()
    )
    rate_limits(request).overrides.invalidate(user_id)
    return _out(request, user_id, overrides)


@admin.delete("/users/{user_id}/limits", status_code=204)
async def delete_user_limits(
    user_id: uuid.UUID, request: Request, _: SuperUser, session: SessionDep
) -> Response:
    await service.delete_overrides(session=session, user_id=user_id)
    rate_limits(request).overrides.invalidate(user_id)
    return Response(status_code=204)
