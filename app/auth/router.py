"""Account routes: register, sign in (bearer JWT for API clients, an HttpOnly cookie for the
web page), reset and verification by email, the signed-in user, their sign-ins, their data."""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi_users import InvalidPasswordException, exceptions

from app.auth import service
from app.auth.dependencies import CurrentUser
from app.auth.manager import (
    AUTH_COOKIE_NAME,
    UserManager,
    bearer_backend,
    cookie_backend,
    fastapi_users,
)
from app.auth.schemas import (
    CurrentPassword,
    EndedOut,
    MeUpdate,
    SignInOut,
    SignInsOut,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.auth.tokens import STATE_SIGN_IN
from app.conversations.history import SessionFilter
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.dependencies import ClockDep, SessionmakerDep, SettingsDep
from app.core.errors import AppError, NotFoundError
from app.exports import naming, zip_export
from app.exports.dependencies import DownloadSlotDep
from app.exports.responses import DownloadResponse
from app.ratelimit.dependencies import SIGN_IN_LIMIT, TOKEN_LIMIT, RateLimit
from app.ratelimit.service import load_overrides

ManagerDep = Annotated[UserManager, Depends(fastapi_users.get_user_manager)]


class CredentialsError(AppError):
    status_code = 400
    code = "wrong_current_password"
    title = "Current password needed"


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
    dependencies=[TOKEN_LIMIT],
)
router.include_router(
    fastapi_users.get_verify_router(UserRead),
    prefix="/auth",
    tags=["auth"],
    dependencies=[TOKEN_LIMIT],
)

# /users/me is ours (current password, deletion); fastapi-users keeps /users/{id} for
# superusers.
users = APIRouter(prefix="/users", tags=["users"])


@users.get("/me", response_model=UserRead, dependencies=[RateLimit("default")])
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


async def _require_current_password(
    manager: UserManager, user: CurrentUser, given: str | None
) -> None:
    if not given:
        raise CredentialsError(
            "Type your current password to change your email or password.",
            code="current_password_required",
        )
    if not await manager.check_password(user, given):
        raise CredentialsError("Your current password is not right.")


@users.patch("/me", response_model=UserRead, dependencies=[RateLimit("credentials")])
async def update_me(
    body: MeUpdate,
    request: Request,
    user: CurrentUser,
    manager: ManagerDep,
) -> UserRead:
    """Changes the email and/or the password; both need `currentPassword`. Either change
    ends every other sign-in of the user, on every instance."""
    changes = body.model_dump(include={"email", "password"}, exclude_none=True)
    if not changes:
        return UserRead.model_validate(user)
    await _require_current_password(manager, user, body.current_password)
    try:
        updated = await manager.update(UserUpdate(**changes), user, safe=True, request=request)
    except InvalidPasswordException as exc:
        raise AppError(str(exc.reason), code="invalid_password") from None
    except exceptions.UserAlreadyExists:
        raise AppError("Another account uses this email.", code="email_already_exists") from None
    return UserRead.model_validate(updated)


@users.delete("/me", status_code=204, dependencies=[RateLimit("credentials")])
async def delete_me(
    body: CurrentPassword,
    user: CurrentUser,
    manager: ManagerDep,
    session: SessionDep,
    clock: ClockDep,
) -> Response:
    """Deletes the account and every row it owns, in one transaction. Needs the password."""
    await _require_current_password(manager, user, body.current_password)
    await service.delete_account(session=session, user_id=user.id, now=clock.now())
    response = Response(status_code=204)
    response.delete_cookie(AUTH_COOKIE_NAME, path="/")
    return response


_factory_users = fastapi_users.get_users_router(UserRead, UserUpdate)
_factory_users.routes = [
    r for r in _factory_users.routes if not (isinstance(r, APIRoute) and r.path == "/me")
]
users.include_router(_factory_users, dependencies=[RateLimit("default")])
router.include_router(users)


# --- the caller's sign-ins and data -------------------------------------------------------

me = APIRouter(prefix="/api/me", tags=["account"], dependencies=[RateLimit("default")])


def _idle_seconds(settings: Settings) -> int:
    return settings.sign_in_idle_days * 86_400


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
    rows = await service.list_sign_ins(
        session=session, user_id=user.id, now=clock.now(), idle_seconds=_idle_seconds(settings)
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
    sign_in_id: uuid.UUID, user: CurrentUser, session: SessionDep, clock: ClockDep
) -> Response:
    """Ends one sign-in (this one too, if named): its token stops working everywhere."""
    await service.end_sign_in(
        session=session, user_id=user.id, sign_in_id=sign_in_id, now=clock.now()
    )
    return Response(status_code=204)


@me.post("/sign-ins/end-others", response_model=EndedOut)
async def end_other_sign_ins(
    request: Request, user: CurrentUser, session: SessionDep, clock: ClockDep
) -> EndedOut:
    """Ends every sign-in but the one making this request."""
    current = _current_id(request)
    if current is None:
        raise NotFoundError("This request has no sign-in of its own.", code="sign_in_not_found")
    ended = await service.end_sign_ins(
        session=session, user_id=user.id, now=clock.now(), keep=current
    )
    return EndedOut(ended=ended)


@me.get(
    "/data",
    responses={
        200: {"content": {"application/zip": {}}, "description": "A ZIP archive"},
        429: {"description": "Too many requests, or too many downloads in progress at once"},
    },
    dependencies=[RateLimit("export"), DownloadSlotDep],
)
async def download_my_data(
    user: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    sessionmaker: SessionmakerDep,
) -> DownloadResponse:
    """Everything of yours: the ZIP export of every conversation plus `account.json`
    (profile, sign-ins, settings)."""
    now = clock.now()
    sign_ins = await service.list_sign_ins(
        session=session, user_id=user.id, now=now, idle_seconds=_idle_seconds(settings)
    )
    overrides = await load_overrides(session=session, user_id=user.id)
    document = service.account_document(
        user=user, sign_ins=sign_ins, settings={"rateLimitOverrides": overrides}, now=now
    )
    account = json.dumps(document, ensure_ascii=False, indent=2).encode()
    produce = partial(
        zip_export.archive,
        sessionmaker=sessionmaker,
        user_id=user.id,
        flt=SessionFilter(status="all"),
        now=now,
        data_dir=settings.data_dir,
        extra_files={ACCOUNT_FILE: account},
    )
    name = f"chatkeep-my-data-{naming.day(now)}.zip"
    headers = {"Content-Disposition": naming.content_disposition(name), "Cache-Control": "no-store"}
    return DownloadResponse(produce, media_type="application/zip", headers=headers)


ACCOUNT_FILE = "account.json"
router.include_router(me)
