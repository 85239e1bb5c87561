"""Domain exceptions and the one error shape of the API: RFC 9457 problem+json.

Every error a client sees is `{"type", "title", "status", "detail", "code", ...}` with
media type `application/problem+json`. Stack traces never leave the server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from enum import Enum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    InvalidRequestError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core import metrics
from app.core.db import DatabaseTimeoutError

logger = logging.getLogger("app.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
DB_RETRY_AFTER_SECONDS = 5


class AppError(Exception):
    """Base of every domain error: carries what the client should see."""

    status_code = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class ForbiddenError(AppError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class InvalidInputError(AppError):
    status_code = 422
    code = "invalid_input"
    title = "Invalid input"


class PayloadTooLargeError(AppError):
    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class UpstreamError(AppError):
    status_code = 502
    code = "upstream_error"
    title = "Upstream service failed"


class UpstreamTimeoutError(AppError):
    status_code = 504
    code = "upstream_timeout"
    title = "Upstream service timed out"


class ServiceUnavailableError(AppError):
    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"


_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _safe(value: Any) -> Any:
    """Echoed input (a location, a key) with NUL and lone surrogates shown as U+FFFD,
    so an error about bad text can always be encoded."""
    if isinstance(value, str):
        return _UNSAFE_TEXT.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def problem_body(
    status: int,
    *,
    detail: str,
    code: str,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{code.replace('_', '-')}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    return dict(_safe(body))


def problem_response(
    status: int,
    *,
    detail: str,
    code: str,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(status, detail=detail, code=code, title=title, extra=extra)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def app_error_body(exc: AppError) -> dict[str, Any]:
    return problem_body(
        exc.status_code, detail=exc.detail, code=exc.code, title=exc.title, extra=exc.extra
    )


class StoredProblem(AppError):
    """A problem body kept earlier (a failed turn), answered again as it was."""

    def __init__(self, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None):
        self.body = dict(body)
        super().__init__(str(body.get("detail", "")), code=str(body.get("code", "error")))
        self.status_code = int(body.get("status", 500))
        self.title = str(body.get("title", HTTPStatus(self.status_code).phrase))
        self.headers = dict(headers or {})
        self.extra = {
            k: v for k, v in self.body.items() if k not in {"type", "title", "status", "detail"}
        }
        self.extra.pop("code", None)


# fastapi-users reports errors as constant strings; give them readable sentences.
_FASTAPI_USERS_DETAILS = {
    "REGISTER_USER_ALREADY_EXISTS": "A user with this email already exists.",
    "REGISTER_INVALID_PASSWORD": "The password is not acceptable.",
    "LOGIN_BAD_CREDENTIALS": "Wrong email or password.",
    "LOGIN_USER_NOT_VERIFIED": "This account is not verified yet.",
    "RESET_PASSWORD_BAD_TOKEN": (
        "This reset link is not valid any more (used, expired or mistyped). Ask for a new one."
    ),
    "VERIFY_USER_BAD_TOKEN": "This confirmation link is not valid any more. Ask for a new one.",
    "VERIFY_USER_ALREADY_VERIFIED": "This email address is already confirmed.",
}


def _http_exception_detail(exc: StarletteHTTPException) -> tuple[str, str, dict[str, Any]]:
    detail = exc.detail
    extra: dict[str, Any] = {}
    if isinstance(detail, dict):
        raw = detail.get("code", "error")
        # fastapi-users' ErrorCode is a str Enum: its value is the plain name.
        code = str(raw.value if isinstance(raw, Enum) else raw).lower()
        if code.endswith("_invalid_password"):
            code = "invalid_password"  # one code for register, reset and change
        reason = detail.get("reason")
        text = str(reason) if reason else _FASTAPI_USERS_DETAILS.get(code.upper(), code)
        return text, code, extra
    if isinstance(detail, str) and detail.isupper() and " " not in detail:
        return (
            _FASTAPI_USERS_DETAILS.get(detail, detail.replace("_", " ").capitalize()),
            detail.lower(),
            extra,
        )
    status_phrase = HTTPStatus(exc.status_code).phrase
    code = status_phrase.lower().replace(" ", "_").replace("-", "_")
    return str(detail or status_phrase), code, extra


def is_server_busy(exc: BaseException) -> bool:
    """Every pooled connection is in use and none came free in time: load, not an outage."""
    return isinstance(exc, PoolTimeoutError)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseTimeoutError | InterfaceError | OperationalError):
        return True
    if isinstance(exc, DisconnectionError):
        return True
    if isinstance(exc, InvalidRequestError) and "connection is closed" in str(exc):
        # The pool gave up after its reconnection attempts on checkout.
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OSError | TimeoutError):
        # Refused TCP connections, missing Unix sockets, connect timeouts: only when raised
        # while talking to the database, so an unrelated error in our own code stays a 500.
        return _raised_in_database_driver(exc)
    return False


def _raised_in_database_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if "/asyncpg/" in filename or "/sqlalchemy/" in filename:
            return True
        tb = tb.tb_next
    return False


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            exc.status_code,
            detail=exc.detail,
            code=exc.code,
            title=exc.title,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        text, code, extra = _http_exception_detail(exc)
        return problem_response(
            exc.status_code,
            detail=text,
            code=code,
            headers=getattr(exc, "headers", None),
            extra=extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ())]
            errors.append({"location": ".".join(loc), "message": err.get("msg", "invalid")})
        first = errors[0] if errors else {"location": "", "message": "invalid request"}
        detail = (
            f"{first['location']}: {first['message']}" if first["location"] else first["message"]
        )
        return problem_response(
            422,
            detail=detail,
            code="invalid_input",
            title="Invalid input",
            extra={"errors": errors},
        )


class UnhandledErrorMiddleware:
    """Turns any exception that escaped the routes into a problem response.

    Starlette's own handler for `Exception` re-raises after answering, which makes the
    server log a traceback for an expected outage (database down). This one answers and
    stops there; if the response had already started, there is nothing left to say.
    """

    def __init__(self, app: Any, *, retry_after_seconds: int = DB_RETRY_AFTER_SECONDS) -> None:
        self.app = app
        self.retry_after = str(retry_after_seconds)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                logger.exception("error after the response started")
                return
            await self.problem_for(exc)(scope, receive, send)

    def problem_for(self, exc: BaseException) -> JSONResponse:
        if is_server_busy(exc):
            logger.warning("server busy: %s", exc)
            metrics.SERVER_BUSY.inc()
            return problem_response(
                503,
                detail="The server is busy right now. Please retry shortly.",
                code="server_busy",
                title="Service unavailable",
                headers={"Retry-After": self.retry_after},
            )
        if is_database_unavailable(exc):
            logger.warning("database unavailable: %r", exc)
            metrics.DATABASE_UNAVAILABLE.inc()
            return problem_response(
                503,
                detail="The database is unavailable right now. Please retry shortly.",
                code="database_unavailable",
                title="Service unavailable",
                headers={"Retry-After": self.retry_after},
            )
        logger.exception("unhandled error")
        return problem_response(
            500,
            detail="Something went wrong on our side. It has been logged.",
            code="internal_error",
        )
