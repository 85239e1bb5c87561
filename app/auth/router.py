"""Sign-in routes: register, bearer JWT for API clients, an HttpOnly cookie for the web page."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.manager import bearer_backend, cookie_backend, fastapi_users
from app.auth.schemas import UserCreate, UserRead, UserUpdate
from app.ratelimit.dependencies import RateLimit

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
    dependencies=[RateLimit("auth")],
)
router.include_router(
    fastapi_users.get_auth_router(cookie_backend),
    prefix="/auth/cookie",
    tags=["auth"],
    dependencies=[RateLimit("auth")],
)
router.include_router(
    fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"]
)
