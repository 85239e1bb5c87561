"""Operator routes (superusers only): the original design's 'Monitoring' section,
per-user rate-limit overrides and token budgets, and everyone's usage."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.admin.schemas import AssistantAdminOut, CleanupOut, LocalModelOut, StatsOut
from app.assistant import catalog
from app.assistant.factory import describe_assistant
from app.auth.dependencies import RateLimit, SuperUser
from app.auth.models import User
from app.conversations import retention, service, trash
from app.conversations.schemas import AdminRetentionRunOut
from app.conversations.tasks import sweep_now
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.core.errors import NotFoundError
from app.events.dependencies import EventBusDep
from app.history.dependencies import actor_of
from app.history.schemas import ActivityPage, activity_out
from app.ratelimit import service as overrides_service
from app.ratelimit.dependencies import RateLimitsDep
from app.ratelimit.policies import USER_POLICIES
from app.ratelimit.runtime import RateLimits
from app.ratelimit.schemas import OverridesIn, OverridesOut
from app.usage import service as usage
from app.usage.schemas import (
    BudgetAdminOut,
    BudgetIn,
    ModelUsageOut,
    UsagePageOut,
    UserUsageOut,
    budget_out,
)

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[RateLimit("default")])


@router.get("/sessions/stats", response_model=StatsOut)
async def stats(_: SuperUser, session: SessionDep) -> StatsOut:
    s = await service.session_stats(session=session)
    return StatsOut(
        active=s.active, archived=s.archived, total=s.total, messages=s.messages, users=s.users
    )


CONNECT_A_BIGGER_MODEL = (
    "Set ASSISTANT_BACKEND=openai, LLM_BASE_URL (an OpenAI-compatible API: OpenAI, Azure "
    "OpenAI, vLLM, Ollama, llama.cpp), LLM_API_KEY and LLM_MODEL, and restart; see "
    'docs/assistant.md, "Connecting a bigger model". Or keep this one and let users choose '
    'others per conversation with MODELS (docs/assistant.md, "Several models").'
)


@router.get("/assistant", response_model=AssistantAdminOut)
async def assistant(_: SuperUser, request: Request, settings: SettingsDep) -> AssistantAdminOut:
    """Who answers, with the settings that chose it and how to connect a bigger model."""
    current = request.app.state.assistant
    info = describe_assistant(current)
    shown: dict[str, str] = {"ASSISTANT_BACKEND": settings.assistant_backend}
    if info.backend == "openai":
        shown.update(LLM_BASE_URL=settings.llm_base_url, LLM_MODEL=settings.llm_model)
    local = None
    models = catalog.models_of(current)
    if len(models) > 1:
        shown["MODELS"] = ", ".join(m.id for m in models[1:])
    # The local model's line, whichever model it is.
    writer = next((m.writer for m in models if m.local), getattr(current, "writer", None))
    queue = getattr(writer, "queue", None)
    process = getattr(writer, "process", None)
    if queue is not None and process is not None:
        shown.update(
            LOCAL_MODEL_THREADS=str(settings.local_model_threads),
            LOCAL_MODEL_PARALLEL=str(settings.local_model_parallel),
        )
        local = LocalModelOut(
            running=process.running,
            generating=queue.active,
            waiting=queue.waiting,
            parallel=queue.slots,
            queue_size=queue.size,
        )
    return AssistantAdminOut(
        backend=info.backend,
        model=info.model,
        label=info.label,
        settings=shown,
        connect_a_bigger_model=CONNECT_A_BIGGER_MODEL,
        local_model=local,
        models=[{"id": m.id, "name": m.name, "backend": m.backend} for m in models],
    )


@router.post("/sessions/cleanup", response_model=CleanupOut)
async def cleanup(
    _: SuperUser,
    clock: ClockDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
    bus: EventBusDep,
) -> CleanupOut:
    outcome = await sweep_now(
        sessionmaker=sessionmaker, settings=settings, now=clock.now(), bus=bus
    )
    return CleanupOut(archived=outcome.archived)


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(
    session_id: Annotated[str, Path(max_length=200)],
    admin: SuperUser,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Deletes any user's conversation for good; the owner's activity shows who did it."""
    if not await service.delete_session_any_owner(
        session=session, session_id=session_id, now=clock.now(), actor=actor_of(request, admin.id)
    ):
        raise NotFoundError("No session with this id.", code="session_not_found")
    return Response(status_code=204)


@router.get("/activity", response_model=ActivityPage)
async def activity(
    _: SuperUser,
    session: SessionDep,
    user_id: Annotated[uuid.UUID | None, Query(alias="userId")] = None,
    limit: Annotated[int, Query(ge=1, le=trash.ACTIVITY_PAGE_MAX)] = trash.ACTIVITY_PAGE_DEFAULT,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> ActivityPage:
    """Everyone's audit trail (or one user's), newest first."""
    if user_id is None:
        page = await trash.list_all_activity(session=session, limit=limit, before=before)
    else:
        page = await trash.list_activity(
            session=session, user_id=user_id, limit=limit, before=before
        )
    return ActivityPage(items=[activity_out(e) for e in page.items], next_before=page.next_before)


@router.get("/retention-runs", response_model=list[AdminRetentionRunOut])
async def retention_runs(
    _: SuperUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AdminRetentionRunOut]:
    """Every user's retention runs that moved conversations to the trash, newest first."""
    runs = await retention.all_runs(session, limit=limit)
    return [
        AdminRetentionRunOut(at=r.at, days=r.days, trashed=r.trashed, user_id=str(r.user_id))
        for r in runs
    ]


# --- per-user rate-limit overrides -------------------------------------------------------


def _overrides_out(
    limits: RateLimits, user_id: uuid.UUID, overrides: dict[str, str]
) -> OverridesOut:
    return OverridesOut(
        user_id=str(user_id),
        overrides={name: overrides.get(name) for name in USER_POLICIES},
        configured={name: limits.policies[name].text for name in USER_POLICIES},
    )


async def existing_user_id(user_id: uuid.UUID, _: SuperUser, session: SessionDep) -> uuid.UUID:
    """The path's user id, when such a user exists (404 `user_not_found` otherwise). Only a
    superuser learns either way."""
    if await session.get(User, user_id) is None:
        raise NotFoundError("No user with this id.", code="user_not_found")
    return user_id


ExistingUserId = Annotated[uuid.UUID, Depends(existing_user_id)]


@router.get("/users/{user_id}/limits", response_model=OverridesOut)
async def get_user_limits(
    user_id: ExistingUserId, _: SuperUser, session: SessionDep, limits: RateLimitsDep
) -> OverridesOut:
    overrides = await overrides_service.get_overrides(session=session, user_id=user_id)
    return _overrides_out(limits, user_id, overrides)


@router.put("/users/{user_id}/limits", response_model=OverridesOut)
async def put_user_limits(
    user_id: ExistingUserId,
    body: OverridesIn,
    limits: RateLimitsDep,
    _: SuperUser,
    session: SessionDep,
    clock: ClockDep,
) -> OverridesOut:
    """Replaces the user's overrides: a string sets one, null or absent restores the default."""
    overrides = await overrides_service.replace_overrides(
        session=session, user_id=user_id, overrides=body.root, now=clock.now()
    )
    limits.overrides.invalidate(user_id)
    return _overrides_out(limits, user_id, overrides)


@router.delete("/users/{user_id}/limits", status_code=204)
async def delete_user_limits(
    user_id: ExistingUserId, _: SuperUser, session: SessionDep, limits: RateLimitsDep
) -> Response:
    await overrides_service.delete_overrides(session=session, user_id=user_id)
    limits.overrides.invalidate(user_id)
    return Response(status_code=204)


# --- usage and per-user token budgets ----------------------------------------------------

USAGE_PAGE_MAX = 200


@router.get("/usage", response_model=UsagePageOut)
async def usage_view(
    _: SuperUser,
    session: SessionDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=USAGE_PAGE_MAX)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> UsagePageOut:
    """Every user's usage, in order of sign-up: conversations, messages, last activity,
    and tokens by model (all time, today and this month, UTC)."""
    page = await usage.usage_page(db=session, cursor=cursor, limit=limit, now=clock.now())
    items = []
    for entry in page.items:
        u = entry.user
        models = [
            ModelUsageOut(
                model=m.model,
                turns=m.turns,
                prompt_tokens=m.prompt_tokens,
                completion_tokens=m.completion_tokens,
                total_tokens=m.prompt_tokens + m.completion_tokens,
                tokens_today=m.today,
                tokens_this_month=m.this_month,
            )
            for m in entry.models
        ]
        items.append(
            UserUsageOut(
                user_id=str(u.user_id),
                email=u.email,
                created_at=u.created_at,
                conversations=u.conversations,
                messages=u.messages,
                last_active_at=u.last_active_at,
                total_tokens=sum(m.total_tokens for m in models),
                tokens_today=sum(m.tokens_today for m in models),
                tokens_this_month=sum(m.tokens_this_month for m in models),
                budget={"tokensPerDay": u.tokens_per_day, "tokensPerMonth": u.tokens_per_month},
                models=models,
            )
        )
    return UsagePageOut(items=items, next_cursor=page.next_cursor)


async def _budget_out(
    session: SessionDep, settings: SettingsDep, user_id: uuid.UUID, now: datetime
) -> BudgetAdminOut:
    own = await usage.get_budget(db=session, user_id=user_id)
    budgets = await usage.standing(db=session, settings=settings, user_id=user_id, now=now)
    return BudgetAdminOut(
        user_id=str(user_id),
        tokens_per_day=own.tokens_per_day,
        tokens_per_month=own.tokens_per_month,
        configured={
            "tokensPerDay": settings.quota_tokens_per_day,
            "tokensPerMonth": settings.quota_tokens_per_month,
        },
        budgets=[budget_out(b) for b in budgets],
    )


@router.get("/users/{user_id}/budget", response_model=BudgetAdminOut)
async def get_user_budget(
    user_id: ExistingUserId,
    _: SuperUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> BudgetAdminOut:
    return await _budget_out(session, settings, user_id, clock.now())


@router.put("/users/{user_id}/budget", response_model=BudgetAdminOut)
async def put_user_budget(
    user_id: ExistingUserId,
    body: BudgetIn,
    _: SuperUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> BudgetAdminOut:
    """Sets the user's token budgets: a number (0: unlimited), or null for the configured
    QUOTA_TOKENS_PER_DAY / QUOTA_TOKENS_PER_MONTH. Holds from the user's next turn."""
    await usage.put_budget(
        db=session,
        user_id=user_id,
        tokens_per_day=body.tokens_per_day,
        tokens_per_month=body.tokens_per_month,
        now=clock.now(),
    )
    return await _budget_out(session, settings, user_id, clock.now())
