"""`RateLimit(policy)`: the dependency routes attach, and the headers it leaves behind.

    @router.get("/sessions/export", dependencies=[RateLimit("export")])

`RateLimit` is built by `rate_limit_dependency(user_id=...)` where the signed-in user is
known (`app.auth.dependencies`). A user policy counts that user (all their tokens and
devices share one count); `RateLimit("auth")` counts the client IP and the email in the
form (`username`) or JSON (`email`) body. The check runs before the route body, so a
rejected request changes nothing. `RateLimit("default")` on a router stands aside on routes
that carry a more specific policy, so every request counts against exactly one user policy.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import RequestSessionDep
from app.core.errors import AppError
from app.core.http import client_ip
from app.core.text import normalize_email
from app.ratelimit.policies import AUTH_POLICY, MAIL_POLICY, SHARED_POLICY, USER_POLICIES
from app.ratelimit.runtime import RateLimits
from app.ratelimit.storage import Decision, WindowState

STATE_KEY = "ratelimit_headers"
MAX_EMAIL_CHARS = 320


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"


def rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def get_rate_limits(request: Request) -> RateLimits:
    return rate_limits(request)


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


def header_values(states: Sequence[WindowState], now: float) -> dict[str, str]:
    """RateLimit-Policy and RateLimit as in draft-ietf-httpapi-ratelimit-headers."""
    if not states:
        return {}
    return {
        "RateLimit-Policy": ", ".join(
            f'"{s.window.name}";q={s.window.amount};w={s.window.seconds}' for s in states
        ),
        "RateLimit": ", ".join(
            f'"{s.window.name}";r={s.remaining};t={s.reset_in(now)}' for s in states
        ),
    }


def _enforce(request: Request, decision: Decision, policy: str) -> None:
    now = time.time()
    headers = header_values(decision.states, now)
    if decision.allowed:
        if headers:
            request.state.ratelimit_headers = headers
        return
    rejected = decision.rejected_by
    assert rejected is not None
    retry_after = max(1, rejected.reset_in(now))
    raise RateLimitedError(
        f"Too many {policy} requests: the limit is {rejected.window.limit}. "
        f"Retry in {retry_after} s.",
        headers={**headers, "Retry-After": str(retry_after)},
        extra={"policy": policy, "limit": rejected.window.limit, "retryAfter": retry_after},
    )


def _limiters_in(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for sub in dependant.dependencies:
        if isinstance(sub.call, UserLimiter):
            found.add(sub.call.policy)
        found |= _limiters_in(sub)
    return found


# id(route) -> (route, answer); holding the route keeps its id from being reused.
_SPECIFIC: dict[int, tuple[APIRoute, bool]] = {}


def _route_has_specific_policy(request: Request) -> bool:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return False
    known = _SPECIFIC.get(id(route))
    if known is None:
        known = _SPECIFIC[id(route)] = (route, bool(_limiters_in(route.dependant) - {"default"}))
    return known[1]


UserIdDependency = Callable[..., Awaitable[uuid.UUID]]


class UserLimiter:
    """Counts the signed-in user. Which user that is, a layer above says: `user_id` is a
    dependency giving the caller's id (auth's `current_user_id`), so this package needs
    nothing of auth's."""

    def __init__(self, policy: str, user_id: UserIdDependency) -> None:
        self.policy = policy
        # FastAPI reads a dependency's parameters from its signature: this one's user
        # comes from the given dependency.
        self.__signature__ = inspect.Signature(
            [
                inspect.Parameter("request", _KEYWORD, annotation=Request),
                inspect.Parameter(
                    "user_id", _KEYWORD, annotation=Annotated[uuid.UUID, Depends(user_id)]
                ),
                inspect.Parameter("session", _KEYWORD, annotation=RequestSessionDep),
            ]
        )

    async def __call__(self, request: Request, user_id: uuid.UUID, session: AsyncSession) -> None:
        limits = rate_limits(request)
        if not limits.enabled:
            return
        if self.policy == "default" and _route_has_specific_policy(request):
            return
        decision = await limits.hit_user(self.policy, user_id=user_id, session=session)
        _enforce(request, decision, self.policy)


_KEYWORD = inspect.Parameter.KEYWORD_ONLY


class QuotaTicket:
    """A request of a policy counted on success: checked, not yet counted."""

    def __init__(
        self, limits: RateLimits, policy: str, user_id: uuid.UUID, session: AsyncSession
    ) -> None:
        self._limits = limits
        self._policy = policy
        self._user_id = user_id
        self._session = session
        self.counted = False

    async def count(self) -> None:
        """Counts the request now that it did what the policy limits (once)."""
        if self.counted or not self._limits.enabled:
            return
        self.counted = True
        await self._limits.hit_user(self._policy, user_id=self._user_id, session=self._session)


class SuccessLimiter(UserLimiter):
    """A user policy checked before the route without counting: the route counts with
    `QuotaTicket.count()` only once the request did what the policy limits (an import
    that stored something), so a refused or failed request costs no quota. Concurrent
    requests of one user may each pass the check; the import's per-user lock and the
    process's one large-import slot keep that to a request or two."""

    async def __call__(  # type: ignore[override]
        self, request: Request, user_id: uuid.UUID, session: AsyncSession
    ) -> QuotaTicket:
        limits = rate_limits(request)
        ticket = QuotaTicket(limits, self.policy, user_id, session)
        if not limits.enabled:
            return ticket
        policy, _ = await limits.user_policy(self.policy, user_id=user_id, session=session)
        states = await limits.limiter.peek(policy, "user", str(user_id))
        if states:
            full = next((s for s in states if s.remaining <= 0), None)
            decision = Decision(allowed=full is None, states=states, rejected_by=full)
            _enforce(request, decision, self.policy)
        return ticket


def rate_limit_on_success_dependency(*, user_id: UserIdDependency) -> Callable[[str], Any]:
    """`RateLimitOnSuccess(policy)` for `ticket: Annotated[QuotaTicket,
    RateLimitOnSuccess("import")]`: checked before the route, counted by the route with
    `await ticket.count()`."""

    def rate_limit_on_success(policy: str) -> Any:
        if policy not in USER_POLICIES:
            raise ValueError(f"unknown user rate-limit policy {policy!r}")
        return Depends(SuccessLimiter(policy, user_id))

    return rate_limit_on_success


async def target_email(request: Request) -> str | None:
    """The email a sign-in (form field `username`) or registration (JSON `email`) names.

    FastAPI has already read and cached the body for the route, so this reads no more.
    """
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    value: Any = None
    try:
        if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            value = (await request.form()).get("username")
        elif content_type == "application/json" or content_type.endswith("+json"):
            body = await request.json()
            value = body.get("email") if isinstance(body, dict) else None
    except Exception:
        return None  # the route's own validation reports a malformed body
    if not isinstance(value, str) or not value.strip():
        return None
    return normalize_email(value)[:MAX_EMAIL_CHARS]


class AuthLimiter:
    """Counts the client IP and the email the body names.

    With `by_email=False` (the sign-in routes) only the IP is counted here: the user
    manager counts the account once its lookup has found it (`count_account_attempt`).
    Without an email in the body (sign-out, reset by token) only the IP counts, and only
    where `always=True`.
    """

    policy = AUTH_POLICY

    def __init__(self, *, by_email: bool = True, always: bool = False) -> None:
        self.by_email = by_email
        self.always = always

    async def __call__(self, request: Request) -> None:
        limits = rate_limits(request)
        if not limits.enabled:
            return
        email = await target_email(request)
        if email is None and not self.always:
            return  # sign-out, or a body the route will reject: no password is tried
        if email is None or not self.by_email:
            decision = await limits.hit_auth(ip=client_ip(request), email=None)
        else:
            decision = await limits.hit_auth(ip=client_ip(request), email=email)
        _enforce(request, decision, AUTH_POLICY)


class IpLimiter:
    """Counts the client IP: for pages open to anyone (a shared conversation)."""

    def __init__(self, policy: str) -> None:
        self.policy = policy

    async def __call__(self, request: Request) -> None:
        limits = rate_limits(request)
        if not limits.enabled:
            return
        decision = await limits.hit_ip(self.policy, ip=client_ip(request))
        _enforce(request, decision, self.policy)


class MailLimiter:
    """Counts a reset or verification mail against the address the body names.

    Counted whether or not an account has that address, so the answer (a 429 once the
    address's cap is reached, 202 before) tells nothing about accounts.
    """

    async def __call__(self, request: Request) -> None:
        limits = rate_limits(request)
        if not limits.enabled:
            return
        email = await target_email(request)
        if email is None:
            return  # the routes that take a token, not an address, send no mail
        _enforce(request, await limits.hit_mail_address(email), MAIL_POLICY)


async def may_mail_user(request: Request, user_id: uuid.UUID) -> bool:
    """Counts one mail to this account; False once its cap (the mail policy) is reached.

    The caller then sends nothing and answers as usual: refusing out loud here would
    tell that the account exists.
    """
    limits = rate_limits(request)
    if not limits.enabled:
        return True
    return (await limits.hit_mail_user(user_id)).allowed


SIGN_IN_LIMIT: DependsParam = Depends(AuthLimiter(by_email=False))
MAIL_LIMIT: DependsParam = Depends(MailLimiter())
TOKEN_LIMIT: DependsParam = Depends(AuthLimiter(always=True))
_IP_LIMITERS: dict[str, AuthLimiter | IpLimiter] = {
    AUTH_POLICY: AuthLimiter(),
    SHARED_POLICY: IpLimiter(SHARED_POLICY),
}


def rate_limit_dependency(*, user_id: UserIdDependency) -> Callable[[str], DependsParam]:
    """`RateLimit(policy)` for `dependencies=[RateLimit("chat")]` on a route or router,
    with user policies counting the user that `user_id` names."""
    limiters: dict[str, UserLimiter | AuthLimiter | IpLimiter] = {
        **{name: UserLimiter(name, user_id) for name in USER_POLICIES},
        **_IP_LIMITERS,
    }

    def rate_limit(policy: str) -> DependsParam:
        if policy not in limiters:
            raise ValueError(f"unknown rate-limit policy {policy!r}")
        dependency: DependsParam = Depends(limiters[policy])
        return dependency

    return rate_limit


class RateLimitHeadersMiddleware:
    """Adds the RateLimit headers a limiter computed to the response, whatever its type
    (a route returning its own JSONResponse or a stream skips FastAPI's header merging)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get(STATE_KEY)
                if extra:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    added = [
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in extra.items()
                        if k.lower().encode("latin-1") not in present
                    ]
                    message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_headers)


async def count_account_attempt(request: Request, account: str) -> None:
    """Counts a sign-in attempt against the account it names (the auth policy).

    Called by the user manager after the lookup, with the normalised stored address of the
    account found (or of the address typed, when none is), so every spelling that finds
    one account shares one count.
    """
    limits = rate_limits(request)
    if not limits.enabled:
        return
    decision = await limits.hit_account(account)
    _enforce(request, decision, AUTH_POLICY)
