from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.conversations import service
from app.core import metrics

logger = logging.getLogger("app.health")
router = APIRouter(tags=["monitoring"])

HEALTH_TIMEOUT_SECONDS = 3.0


@router.get("/healthz", responses={503: {"description": "The database is unreachable"}})
async def healthz(request: Request) -> JSONResponse:
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            async with request.app.state.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "database": "down"},
            status_code=503,
            headers={"Retry-After": str(request.app.state.settings.db_retry_after_seconds)},
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(request: Request) -> Response:
    try:
        async with (
            asyncio.timeout(HEALTH_TIMEOUT_SECONDS),
            request.app.state.sessionmaker() as session,
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
