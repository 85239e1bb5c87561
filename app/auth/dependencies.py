from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from app.auth.manager import UserManager, fastapi_users
from app.auth.models import User
from app.auth.tokens import STATE_API_KEY
from app.core.dependencies import SettingsDep
from app.core.errors import ForbiddenError
from app.ratelimit.dependencies import rate_limit_dependency, rate_limit_on_success_dependency

current_active_user = fastapi_users.current_user(active=True)
current_superuser = fastapi_users.current_user(active=True, superuser=True)

CurrentUser = Annotated[User, Depends(current_active_user)]
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
