"""Sign-in routes: register, sign in (bearer JWT for API clients, an HttpOnly cookie for the
web page), reset and verification by email, the signed-in user and their sign-ins.

What spans domains (deleting the account, "download my data") is `app.account`'s."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from fastapi_users import InvalidPasswordException, exceptions

from app.apikeys import service as api_key_service
from app.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeysOut
from app.auth import service
from app.auth import sign_ins as sign_in_service
from app.auth.dependencies import CurrentUser, ManagerDep, RateLimit, RequireSession, SessionUser
from app.auth.manager import (
    bearer_backend,
    cookie_backend,
    fastapi_users,
)
from app.auth.schemas import (
    EndedOut,
    MeUpdate,
    SignInOut,
    SignInsOut,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.auth.tokens import STATE_SIGN_IN
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SettingsDep
from app.core.errors import AppError, NotFoundError
from app.ratelimit.dependencies import MAIL_LIMIT, SIGN_IN_LIMIT, TOKEN_LIMIT

router = APIRouter()
router.include_router(
    fastapi_users.get_register_router(UserRead, UserCreate),
    prefix="/auth",
    tags=["auth"],
    dependencies=[RateLimit("auth")],
)
router.include_router(
    fastapi_users.get_auth_router(bearer_backend),
    prefix="/auth/jwt",
    tags=["auth"],
    dependencies=[SIGN_IN_LIMIT],
)
router.include_router(
    fastapi_users.get_auth_router(cookie_backend),
    prefix="/auth/cookie",
    tags=["auth"],
    dependencies=[SIGN_IN_LIMIT],
)
router.include_router(
    fastapi_users.get_reset_password_router(),
    prefix="/auth",
    tags=["auth"],
    dependencies=[TOKEN_LIMIT, MAIL_LIMIT],
)
router.include_router(
    fastapi_users.get_verify_router(UserRead),
    prefix="/auth",
    tags=["auth"],
    dependencies=[TOKEN_LIMIT, MAIL_LIMIT],
)

# /users/me is ours (current password, deletion); fastapi-users keeps /users/{id} for
# superusers.
users = APIRouter(prefix="/users", tags=["users"])


@users.get("/me", response_model=UserRead, dependencies=[RateLimit("default")])
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@users.patch("/me", response_model=UserRead, dependencies=[RateLimit("credentials")])
async def update_me(
    body: MeUpdate,
    request: Request,
    user: SessionUser,
    manager: ManagerDep,
) -> UserRead:
    """Changes the email and/or the password; both need `currentPassword` and a real sign-in
    (not an API key). Either change ends every other sign-in of the user, on every instance
    (the user manager does it); API keys keep working."""
    changes = body.model_dump(include={"email", "password"}, exclude_none=True)
    if not changes:
        return UserRead.model_validate(user)
    await service.require_current_password(manager, user, body.current_password)
    try:
        updated = await manager.update(UserUpdate(**changes), user, safe=True, request=request)
    except InvalidPasswordException as exc:
        raise AppError(str(exc.reason), code="invalid_password") from None
    except exceptions.UserAlreadyExists:
        raise AppError("Another account uses this email.", code="email_already_exists") from None
    return UserRead.model_validate(updated)


_factory_users = fastapi_users.get_users_router(UserRead, UserUpdate)
_factory_users.routes = [
    r for r in _factory_users.routes if not (isinstance(r, APIRoute) and r.path == "/me")
]
# A superuser's API key does not reach them: they change other users' credentials.
users.include_router(_factory_users, dependencies=[RateLimit("default"), RequireSession])
router.include_router(users)


# --- the caller's sign-ins and data -------------------------------------------------------

me = APIRouter(prefix="/api/me", tags=["account"], dependencies=[RateLimit("default")])


def _current_id(request: Request) -> uuid.UUID | None:
    row = getattr(request.state, STATE_SIGN_IN, None)
    return row.id if row is not None else None


@me.get("/sign-ins", response_model=SignInsOut, response_model_by_alias=True)
async def list_sign_ins(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> SignInsOut:
    """Where you are signed in: device, IP, first and last use. `current` marks this one."""
    rows = await sign_in_service.list_sign_ins(
        session=session,
        user_id=user.id,
        now=clock.now(),
        idle_seconds=sign_in_service.idle_seconds(settings),
    )
    current = _current_id(request)
    return SignInsOut(
        sign_ins=[
            SignInOut(
                id=r.id,
                kind=r.kind,
                device=r.device,
                ip=r.ip,
                created_at=r.created_at,
                last_used_at=r.last_used_at,
                expires_at=r.expires_at,
                current=r.id == current,
            )
            for r in rows
        ]
    )


@me.delete("/sign-ins/{sign_in_id}", status_code=204)
async def end_sign_in(
    sign_in_id: uuid.UUID, user: SessionUser, session: SessionDep, clock: ClockDep
) -> Response:
    """Ends one sign-in (this one too, if named): its token stops working everywhere."""
    await sign_in_service.end_sign_in(
        session=session, user_id=user.id, sign_in_id=sign_in_id, now=clock.now()
    )
    return Response(status_code=204)


@me.post("/sign-ins/end-others", response_model=EndedOut)
async def end_other_sign_ins(
    request: Request, user: SessionUser, session: SessionDep, clock: ClockDep
) -> EndedOut:
    """Sign out everywhere: ends every sign-in but the one making this request, and revokes
    every API key."""
    current = _current_id(request)
    if current is None:
        raise NotFoundError("This request has no sign-in of its own.", code="sign_in_not_found")
    ended, keys = await sign_in_service.sign_out_everywhere(
        session=session, user_id=user.id, now=clock.now(), keep=current
    )
    return EndedOut(ended=ended, keys_ended=keys)


router.include_router(me)


# --- personal API keys ---------------------------------------------------------------------

# Managing keys needs a real sign-in: a key cannot list, mint or revoke keys.
keys = APIRouter(prefix="/api/keys", tags=["api keys"], dependencies=[RateLimit("default")])


@keys.post("", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(
    body: ApiKeyCreate,
    user: SessionUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ApiKeyCreated:
    """Makes a key. The answer holds the key itself, and is the only one that ever will."""
    row, key = await api_key_service.create_key(
        session=session,
        user_id=user.id,
        name=body.name,
        secret_key=settings.resolved_secret_key(),
        now=clock.now(),
        max_keys=settings.api_keys_max_per_user,
    )
    return ApiKeyCreated(
        id=row.id, name=row.name, key=key, prefix=row.prefix, created_at=row.created_at
    )


@keys.get("", response_model=ApiKeysOut)
async def list_api_keys(user: SessionUser, session: SessionDep) -> ApiKeysOut:
    """The user's keys, newest first, without the keys themselves."""
    rows = await api_key_service.list_keys(session=session, user_id=user.id)
    return ApiKeysOut(keys=[ApiKeyOut.model_validate(r) for r in rows])


@keys.delete("/{key_id}", status_code=204)
async def revoke_api_key(key_id: uuid.UUID, user: SessionUser, session: SessionDep) -> Response:
    """Revokes a key: from the next request on it is a 401, on every instance."""
    await api_key_service.revoke_key(session=session, user_id=user.id, key_id=key_id)
    return Response(status_code=204)


router.include_router(keys)
