"""Prometheus metrics.

Counters and histograms are per process (each worker answers /metrics with its own);
session and sweeper figures are read from the database by a scrape (at most once per
METRICS_DATABASE_REFRESH_SECONDS per process), so they agree, up to that age, whichever
worker or instance answers.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_LATENCY = Histogram(
    "chatkeep_http_request_duration_seconds",
    "HTTP request latency by route template and status class.",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CHAT_TURNS = Counter(
    "chatkeep_chat_turns_total",
    "Chat turns handled by this process.",
    ["outcome"],
    registry=REGISTRY,
)
TURNS_IN_FLIGHT = Gauge(
    "chatkeep_turns_in_flight",
    "Replies generating in this process (capped by MAX_TURNS_IN_FLIGHT).",
    registry=REGISTRY,
)
TURNS_REFUSED_BUSY = Counter(
    "chatkeep_turns_refused_busy_total",
    "Chat requests refused because MAX_TURNS_IN_FLIGHT replies were generating.",
    registry=REGISTRY,
)
EVENT_STREAMS = Gauge(
    "chatkeep_event_streams",
    "Open /api/events streams on this process.",
    registry=REGISTRY,
)
SSE_SLOW_READERS = Counter(
    "chatkeep_sse_slow_readers_total",
    "Event streams dropped because their client read nothing for SSE_SEND_TIMEOUT_SECONDS.",
    registry=REGISTRY,
)
EVENTS_RECEIVED = Counter(
    "chatkeep_events_received_total",
    "Live events this process received from the fan-out.",
    registry=REGISTRY,
)
MAIL_MESSAGES = Counter(
    "chatkeep_mail_total",
    "Emails by kind (reset, verify) and outcome (sent, written to the outbox, failed; "
    "capped: not sent, the account had its RATE_LIMIT_MAIL).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
PASSWORD_HASH_SECONDS = Histogram(
    "chatkeep_password_hash_seconds",
    "Time spent hashing or checking passwords (in worker threads), queueing included.",
    registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DATABASE_UNAVAILABLE = Counter(
    "chatkeep_database_unavailable_total",
    "Requests answered 503 database_unavailable (database down, hung or unreachable).",
    registry=REGISTRY,
)
SERVER_BUSY = Counter(
    "chatkeep_server_busy_total",
    "Requests answered 503 server_busy: no pooled database connection came free in time.",
    registry=REGISTRY,
)
SESSIONS = Gauge(
    "chatkeep_sessions", "Chat sessions in the database.", ["status"], registry=REGISTRY
)
MESSAGES = Gauge("chatkeep_messages", "Messages in the database.", registry=REGISTRY)
USERS = Gauge("chatkeep_users", "Registered users.", registry=REGISTRY)
SWEEPER_RUNS = Gauge(
    "chatkeep_sweeper_runs_total", "Sweeps run, across all instances.", registry=REGISTRY
)
SWEEPER_ARCHIVED = Gauge(
    "chatkeep_sweeper_archived_sessions_total",
    "Sessions archived by sweeps, across all instances.",
    registry=REGISTRY,
)
SWEEPER_LAST_RUN = Gauge(
    "chatkeep_sweeper_last_run_timestamp_seconds",
    "When the last sweep finished.",
    registry=REGISTRY,
)
SCHEDULED_RUNS = Counter(
    "chatkeep_scheduled_runs_total",
    "Scheduled runs (the purges) this process ran, by kind and outcome (done, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
PURGED_ROWS = Counter(
    "chatkeep_purged_rows_total",
    "Rows the scheduled purges of this process deleted (or, for idempotency keys, cleared), "
    "by kind.",
    ["kind"],
    registry=REGISTRY,
)


TURN_OPEN_WAITING = Gauge(
    "chatkeep_turn_open_waiting",
    "Chat requests waiting in line for a place among the turns opening now.",
    registry=REGISTRY,
)
TURN_OPEN_QUEUE_TIMEOUTS = Counter(
    "chatkeep_turn_open_queue_timeouts_total",
    "Chat requests answered 503 server_busy after waiting TURN_OPEN_WAIT_SECONDS in line.",
    registry=REGISTRY,
)


class MetricsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            REQUEST_LATENCY.labels(
                scope["method"], route_label(scope), f"{status // 100}xx"
            ).observe(time.perf_counter() - started)


def route_label(scope: Any) -> str:
    """The full path template of the matched route (`/auth/jwt/login`, not `/login`).

    FastAPI keeps included routers as their own routes, so `scope["route"]` is the inner
    route with its path relative to the router; FastAPI records the effective (full) path
    of the route it matched in its part of the scope.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if isinstance(path, str) and path:
        return path
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return "unmatched"
    return f"{scope.get('root_path', '').rstrip('/')}{template}"
