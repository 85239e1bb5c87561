"""One call from create_app: the counters and the header middleware (the caller's own
quotas are `app.account`'s route)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from app.core.config import Settings
from app.ratelimit.dependencies import RateLimitHeadersMiddleware
from app.ratelimit.runtime import RateLimits

logger = logging.getLogger("app.ratelimit")


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    limits = RateLimits(settings)
    app.state.rate_limits = limits
    if limits.enabled and not limits.limiter.shared and settings.resolved_workers() > 1:
        logger.warning(
            "RATE_LIMIT_STORAGE_URL is memory://: each of the %d workers counts on its own; "
            "use redis:// to share one count",
            settings.resolved_workers(),
        )
    app.add_middleware(RateLimitHeadersMiddleware)
