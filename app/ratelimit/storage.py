"""The counters: `limits`' async moving-window strategy over memory:// or Redis.

With `redis://` every worker and instance shares one set of counters. If the storage
fails (Redis down or slow), requests are let through: a logged warning, one increment of
`chatkeep_ratelimit_storage_errors_total`, and no RateLimit headers on that response. After
a failure the storage is left alone for a short pause so an outage costs each request
nothing rather than a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from prometheus_client import Counter

from app.core.metrics import REGISTRY
from app.ratelimit.policies import Policy, Window

logger = logging.getLogger("app.ratelimit")

STORAGE_ERRORS = Counter(
    "chatkeep_ratelimit_storage_errors_total",
    "Rate-limit storage failures; each let its request through (fail open).",
    registry=REGISTRY,
)
FAILURE_PAUSE_SECONDS = 1.0
SUPPORTED_SCHEMES = ("memory", "redis", "rediss", "redis+unix")


def async_storage_url(url: str) -> str:
    """memory:// or redis://host:port/db as configured -> the `limits` async URI."""
    scheme = url.split("://", 1)[0].removeprefix("async+")
    if "://" not in url or scheme not in SUPPORTED_SCHEMES:
        raise ValueError(
            f"RATE_LIMIT_STORAGE_URL must start with one of "
            f"{', '.join(s + '://' for s in SUPPORTED_SCHEMES)}; got {url.split('://', 1)[0]!r}"
        )
    return url if url.startswith("async+") else f"async+{url}"


@dataclass(frozen=True)
class WindowState:
    window: Window
    remaining: int
    reset_at: float  # epoch seconds

    def reset_in(self, now: float) -> int:
        return max(0, math.ceil(self.reset_at - now))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # One state per window of the policy, shortest first; empty when the storage failed.
    states: tuple[WindowState, ...] = ()
    rejected_by: WindowState | None = None


class Limiter:
    def __init__(self, storage_url: str, *, timeout_seconds: float) -> None:
        uri = async_storage_url(storage_url)
        options: dict[str, float | str | bool] = {}
        if not uri.startswith("async+memory"):
            options = {"connect_timeout": timeout_seconds, "stream_timeout": timeout_seconds}
        try:
            self.storage = storage_from_string(uri, **options)
        except ConfigurationError as exc:
            raise ValueError(f"RATE_LIMIT_STORAGE_URL cannot be used: {exc}") from exc
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.timeout_seconds = timeout_seconds
        self.shared = not uri.startswith("async+memory")
        self._paused_until = 0.0

    @property
    def _timeout(self) -> float | None:
        # Only a remote store can hang; in memory a slow (busy) process must not turn
        # into "let everything through".
        return self.timeout_seconds if self.shared else None

    def _available(self) -> bool:
        return time.monotonic() >= self._paused_until

    def _failed(self, exc: BaseException) -> None:
        STORAGE_ERRORS.inc()
        self._paused_until = time.monotonic() + FAILURE_PAUSE_SECONDS
        logger.warning(
            "rate-limit storage failed (%s: %s); letting requests through for %.0f s",
            type(exc).__name__,
            exc,
            FAILURE_PAUSE_SECONDS,
        )

    async def hit(self, policy: Policy, *identifiers: str) -> Decision:
        """Counts one request in every window, shortest first, stopping at the first full one.

        A request turned away by a short window is not counted in the longer ones.
        """
        if not self._available():
            return Decision(allowed=True)
        try:
            async with asyncio.timeout(self._timeout):
                rejected: Window | None = None
                for window in policy.windows:
                    if not await self.strategy.hit(window.item, *identifiers):
                        rejected = window
                        break
                states = await self._states(policy, identifiers)
        except Exception as exc:
            self._failed(exc)
            return Decision(allowed=True)
        rejected_state = next((s for s in states if s.window is rejected), None)
        return Decision(allowed=rejected is None, states=states, rejected_by=rejected_state)

    async def peek(self, policy: Policy, *identifiers: str) -> tuple[WindowState, ...] | None:
        """The current state of every window without counting anything; None if unknown."""
        if not self._available():
            return None
        try:
            async with asyncio.timeout(self._timeout):
                return await self._states(policy, identifiers)
        except Exception as exc:
            self._failed(exc)
            return None

    async def _states(
        self, policy: Policy, identifiers: tuple[str, ...]
    ) -> tuple[WindowState, ...]:
        read = self.strategy.get_window_stats
        if self.shared and len(policy.windows) > 1:
            # Several Redis round trips at once.
            stats = await asyncio.gather(*(read(w.item, *identifiers) for w in policy.windows))
        else:
            # In memory, tasks would only add overhead.
            stats = [await read(w.item, *identifiers) for w in policy.windows]
        return tuple(
            WindowState(window=w, remaining=max(0, s.remaining), reset_at=s.reset_time)
            for w, s in zip(policy.windows, stats, strict=True)
        )
