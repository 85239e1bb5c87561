from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core import metrics
from app.core.dependencies import ClockDep, EngineDep, SessionmakerDep, SettingsDep
from app.core.errors import problem_response
from app.health import service
from app.health.schemas import HealthOut

router = APIRouter(tags=["monitoring"])


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database is unreachable"}},
)
async def healthz(engine: EngineDep, settings: SettingsDep) -> HealthOut | JSONResponse:
    if not await service.database_is_up(engine=engine):
        # Its own status and Retry-After, so built by hand.
        return JSONResponse(
            HealthOut(status="unavailable", database="down").model_dump(),
            status_code=503,
            headers={"Retry-After": str(settings.db_retry_after_seconds)},
        )
    return HealthOut(status="ok", database="ok")


def _bearer_matches(authorization: str, token: str) -> bool:
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode())


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        401: {"description": "METRICS_TOKEN is set and the request lacks it"},
        404: {"description": "APP_ENV=production and METRICS_TOKEN is unset: metrics are off"},
    },
)
async def prometheus_metrics(
    request: Request, settings: SettingsDep, sessionmaker: SessionmakerDep, clock: ClockDep
) -> Response:
    token = settings.metrics_token
    if not token and settings.app_env == "production":
        # Off rather than open: the figures tell how busy the service is and each read
        # costs the database. Set METRICS_TOKEN to turn them on.
        # The same answer as a path that does not exist.
        raise HTTPException(status_code=404)
    if token and not _bearer_matches(request.headers.get("authorization", ""), token):
        return problem_response(
            401,
            detail="Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.",
            code="metrics_token_required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    gauges: service.DatabaseGauges = request.app.state.database_gauges
    await gauges.refresh(sessionmaker=sessionmaker, now=clock.now())
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
