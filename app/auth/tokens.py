"""Sign-ins as rows, and the JWTs that name them.

Every token carries the id of its `sign_in` row (`jti`). The query that reads the user of
a request also checks that row: not ended, not past its absolute expiry and, for the web
cookie, used within SIGN_IN_IDLE_DAYS. Ending a sign-in (sign out, "end other sign-ins",
a password change or reset) is an UPDATE of that row, so it takes effect on every instance
with the next request: there is no cache to wait for.

Why JWTs naming rows rather than fastapi-users' DatabaseStrategy: the row is needed either
way (device, IP, last used), and keeping the signed token means a forged or stale value is
turned away before any database work.

The two kinds differ only in their limits:
- `cookie` (the web page): lasts SIGN_IN_MAX_DAYS from sign-in, ends after
  SIGN_IN_IDLE_DAYS without use, and the cookie is re-sent with a fresh Max-Age as it is
  used, so an active user stays signed in;
- `bearer` (API clients): a fixed ACCESS_TOKEN_TTL_SECONDS from sign-in.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from fastapi import Request
from fastapi_users import models
from fastapi_users.authentication import JWTStrategy
from fastapi_users.jwt import decode_jwt, generate_jwt
from fastapi_users.manager import BaseUserManager
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import service as api_keys
from app.apikeys.repository import ApiKeyRepository
from app.auth.db import BEARER, COOKIE, UserDatabase
from app.auth.models import SignIn, User
from app.auth.repository import CredentialRepository, SignInRepository
from app.core.clock import Clock
from app.core.config import Settings
from app.core.db import commit
from app.core.http import client_ip
from app.core.text import grapheme_floor

# last_used_at is written at most once per this many seconds per sign-in.
TOUCH_SECONDS = 60
DEVICE_MAX_CHARS = 200
STATE_SIGN_IN = "sign_in"
# Set on requests authenticated by a personal API key (the key's row); credential routes
# refuse them (app/auth/dependencies.py).
STATE_API_KEY = "api_key"
STATE_REFRESH_COOKIE = "refresh_auth_cookie"
TOKEN_AUDIENCE = ["fastapi-users:auth"]  # fastapi-users' JWTStrategy default


def device_name(user_agent: str | None) -> str:
    """ "Firefox 128 on Windows", "iPhone · Mobile Safari 17", or the raw agent when unknown."""
    if not user_agent:
        return "Unknown device"
    from ua_parser import parse

    result = parse(user_agent[:1000])
    browser = ""
    if result.user_agent and result.user_agent.family != "Other":
        browser = result.user_agent.family
        if result.user_agent.major:
            browser += f" {result.user_agent.major}"
    os_name = result.os.family if result.os and result.os.family != "Other" else ""
    device = result.device.family if result.device and result.device.family != "Other" else ""
    if browser and os_name:
        text = f"{browser} on {os_name}"
    else:
        text = browser or os_name or user_agent.split(" ", 1)[0]
    if device and device not in text and device not in {"Mac", "K"}:
        text = f"{device} · {text}"
    return text[: grapheme_floor(text, DEVICE_MAX_CHARS)]


def sign_in_token(
    *, secret: str, lifetime_seconds: int, user_id: uuid.UUID, sign_in_id: uuid.UUID
) -> str:
    """The JWT that names a `sign_in` row: what signing in hands out."""
    data = {"sub": str(user_id), "aud": TOKEN_AUDIENCE, "jti": str(sign_in_id)}
    return generate_jwt(data, secret, lifetime_seconds)


def sign_in_limits(settings: Settings, kind: str) -> tuple[int, int | None]:
    """(absolute lifetime, idle limit or None) in seconds."""
    if kind == COOKIE:
        return settings.sign_in_max_days * 86_400, settings.sign_in_idle_days * 86_400
    return settings.access_token_ttl_seconds, None


def new_sign_in(
    *,
    user_id: uuid.UUID,
    kind: str,
    user_agent: str | None,
    ip: str,
    now: datetime,
    lifetime_seconds: int,
) -> SignIn:
    """The row of a new sign-in (not yet added to a session): signing in writes one."""
    return SignIn(
        user_id=user_id,
        kind=kind,
        device=device_name(user_agent),
        ip=ip[:64],
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=lifetime_seconds),
    )


class SignInStrategy(JWTStrategy[User, uuid.UUID]):
    def __init__(self, *, request: Request, user_db: UserDatabase, kind: str) -> None:
        settings: Settings = request.app.state.settings
        lifetime, idle = sign_in_limits(settings, kind)
        super().__init__(secret=settings.resolved_secret_key(), lifetime_seconds=lifetime)
        self.request = request
        self.kind = kind
        self.settings = settings
        self.idle_seconds = idle
        # The request's own session: a sign-in needs one pooled connection, not two.
        self.user_db = user_db
        self.session = user_db.session
        self.clock: Clock = request.app.state.clock

    async def write_token(self, user: User) -> str:
        row = new_sign_in(
            user_id=user.id,
            kind=self.kind,
            user_agent=self.request.headers.get("user-agent"),
            ip=client_ip(self.request),
            now=self.clock.now(),
            lifetime_seconds=self.lifetime_seconds or 0,
        )
        self.session.add(row)
        await commit(self.session)
        setattr(self.request.state, STATE_SIGN_IN, row)
        # The row is the authority; the token's own expiry is a second, real-time bound.
        return sign_in_token(
            secret=self.settings.resolved_secret_key(),
            lifetime_seconds=self.lifetime_seconds or 0,
            user_id=user.id,
            sign_in_id=row.id,
        )

    def _sign_in_id(self, claims: dict[str, Any] | None) -> uuid.UUID | None:
        return _sign_in_id(claims)

    async def read_token(
        self, token: str | None, user_manager: BaseUserManager[User, uuid.UUID]
    ) -> User | None:
        return await read_credential(
            request=self.request, session=self.session, kind=self.kind, token=token
        )

    async def destroy_token(self, token: str, user: models.UP) -> None:
        if self.kind == BEARER and api_keys.is_api_key(token):
            # Signing out with an API key revokes it, as it ends any other bearer token.
            await api_keys.revoke_own_key(
                session=self.session,
                user_id=user.id,
                secret_key=self.settings.resolved_secret_key(),
                key=token,
            )
            await commit(self.session)
            return
        sign_in_id = self._sign_in_id(_claims(self.settings.resolved_secret_key(), token))
        if sign_in_id is None:
            return
        await SignInRepository(self.session, user.id).end(
            sign_in_id, self.clock.now(), only_live=False
        )
        await commit(self.session)


def _claims(secret: str, token: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = decode_jwt(token, secret, TOKEN_AUDIENCE, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims


def _sign_in_id(claims: dict[str, Any] | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(claims["jti"])) if claims else None
    except (KeyError, ValueError):
        return None


async def read_credential(
    *, request: Request, session: AsyncSession, kind: str, token: str | None
) -> User | None:
    """The user a credential of this kind (`bearer`: a JWT or an API key; `cookie`: a
    JWT) signs in, or None. Every authenticated request comes here, through the app's
    own dependency (app/auth/dependencies.py) or fastapi-users' (its own routes): one
    query, and a touch of the sign-in at most once a minute."""
    if token is None:
        return None
    settings: Settings = request.app.state.settings
    if kind == BEARER and token.startswith(api_keys.KEY_PREFIX):
        return await _read_api_key(request=request, session=session, token=token)
    claims = _claims(settings.resolved_secret_key(), token)
    sign_in_id = _sign_in_id(claims)
    if claims is None or sign_in_id is None:
        return None
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except (KeyError, ValueError):
        return None
    clock: Clock = request.app.state.clock
    now = clock.now()
    idle = settings.sign_in_idle_days * 86_400
    found = await CredentialRepository(session).user_with_sign_in(
        user_id, sign_in_id, now=now, idle_seconds=idle
    )
    if found is None:
        return None
    user, row = found
    setattr(request.state, STATE_SIGN_IN, row)
    if row.last_used_at < now - timedelta(seconds=TOUCH_SECONDS):
        # Commits the request's (so far read-only) transaction at once, so the write holds
        # no lock for the rest of the request.
        await SignInRepository(session, row.user_id).touch(row.id, now)
        await commit(session)
        row.last_used_at = now
        if row.kind == COOKIE and kind == COOKIE:
            left = int((row.expires_at - now).total_seconds())
            setattr(request.state, STATE_REFRESH_COOKIE, (token, min(idle, left)))
    return user


async def _read_api_key(*, request: Request, session: AsyncSession, token: str) -> User | None:
    """A personal API key as a bearer token: its row is looked up on every request (no
    cache), so a revoked key is refused on every instance from the next request."""
    if not api_keys.is_api_key(token):
        return None
    settings: Settings = request.app.state.settings
    digest = api_keys.key_hash(secret_key=settings.resolved_secret_key(), key=token)
    found = await CredentialRepository(session).user_with_api_key(digest)
    if found is None:
        return None
    user, row = found
    setattr(request.state, STATE_API_KEY, row)
    clock: Clock = request.app.state.clock
    now = clock.now()
    if row.last_used_at is None or row.last_used_at < now - timedelta(seconds=TOUCH_SECONDS):
        # Committed at once, like a sign-in's touch.
        await ApiKeyRepository(session, row.user_id).touch(row.id, now)
        await commit(session)
        row.last_used_at = now
    return user


class SlidingCookieMiddleware:
    """Re-sends the auth cookie with a fresh Max-Age when its sign-in was just used."""

    def __init__(self, app: Any, *, cookie_name: str, secure: bool) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.secure = secure

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_cookie(message: Any) -> None:
            if message["type"] == "http.response.start":
                refresh = scope.get("state", {}).get(STATE_REFRESH_COOKIE)
                headers = message.get("headers", [])
                already = any(
                    k.lower() == b"set-cookie" and v.startswith(self.cookie_name.encode() + b"=")
                    for k, v in headers
                )
                if refresh and not already:
                    token, max_age = refresh
                    cookie = (
                        f"{self.cookie_name}={token}; HttpOnly; Max-Age={max_age}; Path=/; "
                        "SameSite=lax"
                    )
                    if self.secure:
                        cookie += "; Secure"
                    message["headers"] = [*headers, (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        await self.app(scope, receive, with_cookie)
