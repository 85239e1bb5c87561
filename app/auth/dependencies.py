from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from app.auth.db import BEARER, COOKIE
from app.auth.manager import UserManager, bearer_backend, cookie_backend, fastapi_users
from app.auth.models import User
from app.auth.tokens import STATE_API_KEY, read_credential
from app.core.db import RequestSessionDep
from app.core.dependencies import SettingsDep
from app.core.errors import ForbiddenError
from app.ratelimit.dependencies import rate_limit_dependency, rate_limit_on_success_dependency

# The two transports' schemes: each reads its token from the request (None when absent),
# and puts its security scheme in the OpenAPI document.
_BearerToken = Annotated[str | None, Depends(bearer_backend.transport.scheme)]
_CookieToken = Annotated[str | None, Depends(cookie_backend.transport.scheme)]


async def current_active_user(
    request: Request, session: RequestSessionDep, bearer: _BearerToken, cookie: _CookieToken
) -> User:
    """The signed-in, active user of the request: a bearer token (a JWT, or an API key)
    first, then the web cookie, each read by `read_credential` in one query. Answers as
    fastapi-users' `current_user(active=True)` would (401 without a live sign-in or for a
    deactivated user), without its tree of dependencies (the user manager, the user
    database, a strategy per backend) on every request; fastapi-users' own routes keep
    theirs, which reads tokens through the same `read_credential`."""
    user: User | None = None
    for kind, token in ((BEARER, bearer), (COOKIE, cookie)):
        if token is not None:
            user = await read_credential(request=request, session=session, kind=kind, token=token)
            if user is not None:
                break
    if user is None or not user.is_active:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED)
    return user


CurrentUser = Annotated[User, Depends(current_active_user)]


async def current_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
    return user


ManagerDep = Annotated[UserManager, Depends(fastapi_users.get_user_manager)]
SuperUser = Annotated[User, Depends(current_superuser)]


async def current_session_user(request: Request, user: CurrentUser) -> User:
    """The user of a real sign-in (a bearer JWT or the web cookie), never of an API key.

    Credential routes use it: changing the password or email, deleting the account, ending
    sign-ins and managing API keys. A key that leaked must not be able to lock its owner
    out or mint more keys."""
    if getattr(request.state, STATE_API_KEY, None) is not None:
        raise ForbiddenError(
            "An API key cannot do this: sign in with your password instead.",
            code="session_required",
        )
    return user


# `user: SessionUser` in place of `CurrentUser` on credential routes.
SessionUser = Annotated[User, Depends(current_session_user)]
# For routers and routes that take the user from elsewhere (fastapi-users' own).
RequireSession = Depends(current_session_user)


async def current_user_id(user: CurrentUser) -> uuid.UUID:
    return user.id


# `dependencies=[RateLimit("chat")]`: user policies count the signed-in user.
RateLimit = rate_limit_dependency(user_id=current_user_id)
# `ticket: Annotated[QuotaTicket, RateLimitOnSuccess("import")]`: checked, counted on success.
RateLimitOnSuccess = rate_limit_on_success_dependency(user_id=current_user_id)


async def require_verified_email(settings: SettingsDep, user: CurrentUser) -> None:
    """With REQUIRE_VERIFIED_EMAIL=true, unverified users may sign in but not chat."""
    if settings.require_verified_email and not user.is_verified:
        raise ForbiddenError(
            "Please confirm your email address first: open the link we sent you, or ask "
            "for a new one.",
            code="email_not_verified",
        )


VerifiedEmail = Depends(require_verified_email)
