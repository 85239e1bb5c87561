"""Request hardening: body size cap, CSRF for cookie sessions, security headers.

CSRF: double-submit token plus Origin check. Any state-changing request (POST, PUT, PATCH,
DELETE) that carries the auth cookie (whatever `Authorization` header it also has) must send header
`X-CSRF-Token` equal to the `chatkeep_csrf` cookie, and, when the browser sends `Origin`,
come from this site's own origin (or one listed in TRUSTED_ORIGINS). Bearer-token clients
are not affected: browsers never attach those by themselves.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from starlette.requests import cookie_parser

from app.core.errors import problem_response

CSRF_COOKIE_NAME = "chatkeep_csrf"
CSRF_HEADER_NAME = "x-csrf-token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _headers(scope: Any) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    # Starlette's parser (what `Request.cookies` uses): SimpleCookie builds a Morsel per
    # cookie, a visible share of a request's CPU, and drops every cookie after a bad one.
    header = headers.get("cookie")
    return cookie_parser(header) if header else {}


class BodySizeLimitMiddleware:
    """Rejects bodies over the limit with 413, by Content-Length or while streaming."""

    def __init__(self, app: Any, *, max_bytes: int, exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        declared = _headers(scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Any, receive: Any, send: Any) -> None:
        response = problem_response(
            413,
            detail=f"The request body is larger than {self.max_bytes} bytes.",
            code="payload_too_large",
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media.endswith(b"/json") or media.endswith(b"+json")
    return False


class CsrfMiddleware:
    def __init__(
        self, app: Any, *, auth_cookie: str, trusted_origins: list[str], secure: bool
    ) -> None:
        self.app = app
        self.auth_cookie = auth_cookie
        self.trusted_origins = {o.rstrip("/") for o in trusted_origins}
        self.secure = secure

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        cookies = _cookies(headers)
        if scope["method"] in UNSAFE_METHODS:
            problem = self._check(scope, headers, cookies)
            if problem is not None:
                response = problem_response(
                    403, detail=problem, code="csrf_failed", title="Forbidden"
                )
                await response(scope, receive, send)
                return

        # Bearer clients never need the token; only browsers (cookie sign-in) get one.
        issue_token = CSRF_COOKIE_NAME not in cookies and "authorization" not in headers

        async def send_with_token(message: Any) -> None:
            if issue_token and message["type"] == "http.response.start":
                token = secrets.token_urlsafe(32)
                cookie = f"{CSRF_COOKIE_NAME}={token}; Path=/; SameSite=Lax"
                if self.secure:
                    cookie += "; Secure"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_token)

    def _own_origin(self, scope: Any, headers: dict[str, str]) -> str:
        scheme = headers.get("x-forwarded-proto", scope.get("scheme", "http"))
        host = headers.get("x-forwarded-host") or headers.get("host", "")
        return f"{scheme}://{host}"

    def _check(self, scope: Any, headers: dict[str, str], cookies: dict[str, str]) -> str | None:
        origin = headers.get("origin")
        if origin and origin != "null":
            allowed = {self._own_origin(scope, headers)} | self.trusted_origins
            if origin.rstrip("/") not in allowed:
                return "Cross-site request refused (Origin does not match this site)."
        # Whenever the auth cookie comes along, even beside an Authorization header: a
        # header that fails leaves the cookie to authenticate the request.
        if self.auth_cookie not in cookies:
            return None
        expected = cookies.get(CSRF_COOKIE_NAME, "")
        sent = headers.get(CSRF_HEADER_NAME, "")
        if not expected or not sent or not hmac.compare_digest(expected, sent):
            return (
                "Missing or wrong CSRF token: send the value of the chatkeep_csrf cookie "
                "in the X-CSRF-Token header."
            )
        return None


class SecurityHeadersMiddleware:
    CSP = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )

    def __init__(
        self,
        app: Any,
        *,
        docs_prefixes: tuple[str, ...] = ("/docs", "/redoc"),
        hsts_max_age: int | None = None,
    ) -> None:
        self.app = app
        self.docs_prefixes = docs_prefixes
        # Only when served over HTTPS (COOKIE_SECURE=true): HSTS over plain HTTP on a
        # laptop would teach the browser to refuse http://127.0.0.1 for a year.
        self.hsts = (
            f"max-age={hsts_max_age}; includeSubDomains".encode()
            if hsts_max_age is not None
            else None
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The docs pages set a CSP of their own (app.core.docs).
        is_docs = scope["path"].startswith(self.docs_prefixes)
        is_api = scope["path"].startswith("/api/")

        async def add_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                if not is_docs:
                    extra.append((b"content-security-policy", self.CSP.encode()))
                if self.hsts is not None:
                    extra.append((b"strict-transport-security", self.hsts))
                if is_api and b"cache-control" not in names and _is_json(headers):
                    # Conversations are private: no browser or proxy cache keeps them.
                    extra.append((b"cache-control", b"no-store"))
                # A response that sets one of these itself (a shared conversation's stricter
                # CSP and referrer policy) keeps its own.
                headers.extend((k, v) for k, v in extra if k not in names)
            await send(message)

        await self.app(scope, receive, add_headers)
