from __future__ import annotations

import asyncio
import hmac
import logging

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.conversations import service
from app.core import metrics
from app.core.dependencies import EngineDep, SessionmakerDep, SettingsDep
from app.core.errors import problem_response

logger = logging.getLogger("app.health")
router = APIRouter(tags=["monitoring"])

HEALTH_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", responses={503: {"description": "The database is unreachable"}})
async def healthz(engine: EngineDep, settings: SettingsDep) -> JSONResponse:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "down"},
            status_code=503,
            headers={"Retry-After": str(settings.db_retry_after_seconds)},
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={401: {"description": "METRICS_TOKEN is set and the request lacks it"}},
)
async def prometheus_metrics(
    request: Request, settings: SettingsDep, sessionmaker: SessionmakerDep
) -> Response:
    token = settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        scheme, _, value = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
            return problem_response(
                401,
                detail="Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.",
                code="metrics_token_required",
                headers={"WWW-Authenticate": "Bearer"},
            )
    try:
        async with (
            asyncio.timeout(HEALTH_TIMEOUT_SECONDS),
            sessionmaker() as session,
        ):
            stats = await service.session_stats(session=session)
            sweeps = (
                await session.execute(
                    sa.text(
                        "SELECT count(*), coalesce(sum(archived_count), 0), "
                        "extract(epoch FROM max(finished_at)) FROM sweep_run"
                    )
                )
            ).one()
        metrics.SESSIONS.labels("active").set(stats.active)
        metrics.SESSIONS.labels("archived").set(stats.archived)
        metrics.MESSAGES.set(stats.messages)
        metrics.USERS.set(stats.users)
        metrics.SWEEPER_RUNS.set(sweeps[0])
        metrics.SWEEPER_ARCHIVED.set(float(sweeps[1]))
        if sweeps[2] is not None:
            metrics.SWEEPER_LAST_RUN.set(float(sweeps[2]))
    except Exception as exc:  # still serve the process metrics when the database is down
        logger.warning("metrics: database figures unavailable: %s", exc)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
