"""fastapi-users wiring: the user manager, the bearer and cookie backends (the user
database is app/auth/db.py)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, cast

import jwt
from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import (
    BaseUserManager,
    FastAPIUsers,
    InvalidPasswordException,
    UUIDIDMixin,
    exceptions,
)
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    CookieTransport,
    Strategy,
)
from fastapi_users.jwt import decode_jwt, generate_jwt

from app.apikeys import service as api_keys
from app.auth.db import BEARER, COOKIE, UserDatabase, get_user_db
from app.auth.models import User
from app.auth.passwords import in_hash_pool, password_helper, password_problem
from app.auth.sign_ins import end_sign_ins
from app.auth.tokens import STATE_SIGN_IN, SignInStrategy
from app.core.config import Settings
from app.core.db import commit
from app.core.metrics import MAIL_MESSAGES
from app.core.text import normalize_email
from app.mail.messages import reset_message, signup_attempt_message, verify_message
from app.mail.repository import OutgoingMail
from app.mail.service import queue_mail
from app.ratelimit.dependencies import count_account_attempt, may_mail_user

logger = logging.getLogger("app.auth")

AUTH_COOKIE_NAME = "chatkeep_auth"
RESET_FINGERPRINT_CLAIM = "password_fgpt"


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    """The user manager, with three changes to fastapi-users' own:

    - every argon2 hash or check runs in the password thread pool (`in_hash_pool`);
    - the reset token's password fingerprint is an HMAC of the stored hash (single use: it
      no longer matches once the password changed) rather than a second argon2 hash;
    - every credential change ends the user's other sign-ins (`_update`), but not their API
      keys unless a superuser makes it;
    - the hooks send mail and count the per-account sign-in limit.
    """

    def __init__(self, user_db: Any, settings: Settings, request: Request | None = None) -> None:
        super().__init__(user_db, password_helper())
        self.settings = settings
        self.request = request
        self.db: UserDatabase = user_db
        secret = settings.resolved_secret_key()
        self.secret = secret
        self.reset_password_token_secret = secret
        self.verification_token_secret = secret
        self.reset_password_token_lifetime_seconds = settings.reset_token_ttl_seconds
        self.verification_token_lifetime_seconds = settings.verify_token_ttl_seconds

    # --- the password policy --------------------------------------------------------------

    async def validate_password(self, password: str, user: Any) -> None:
        problem = await in_hash_pool(
            lambda: password_problem(
                password,
                email=getattr(user, "email", None),
                min_length=self.settings.password_min_length,
                min_score=self.settings.password_min_score,
            )
        )
        if problem:
            raise InvalidPasswordException(reason=problem)

    # --- hashing off the event loop --------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        return await in_hash_pool(self.password_helper.hash, password)

    async def check_password(self, user: User, password: str) -> bool:
        """Whether `password` is the user's; upgrades an outdated hash on the way."""
        verified, updated = await in_hash_pool(
            self.password_helper.verify_and_update, password, user.hashed_password
        )
        if verified and updated is not None:
            await self.user_db.update(user, {"hashed_password": updated})
        return bool(verified)

    async def create(
        self, user_create: Any, safe: bool = False, request: Request | None = None
    ) -> User:
        await self.validate_password(user_create.password, user_create)
        existing = await self.user_db.get_by_email(user_create.email)
        if existing is not None:
            # Registration says the address is taken (docs/api.md, "Registering an address
            # that has an account"); its owner hears of the attempt.
            await self._mail_signup_attempt(existing)
            raise exceptions.UserAlreadyExists()
        user_dict = (
            user_create.create_update_dict() if safe else user_create.create_update_dict_superuser()
        )
        user_dict["hashed_password"] = await self.hash_password(user_dict.pop("password"))
        created: User = await self.user_db.create(user_dict)
        # The account and its confirmation mail (when one is due) commit together.
        await self.on_after_register(created, request)
        await commit(self.db.session)
        return created

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        user = await self.user_db.get_by_email(credentials.username)
        # The per-account limit is keyed on what the lookup found, so every spelling that
        # finds this account (case, Unicode look-alikes) shares one budget.
        await self._count_sign_in_attempt(
            normalize_email(user.email if user is not None else credentials.username)
        )
        if user is None:
            await self.hash_password(credentials.password)  # same time as a wrong password
            return None
        if not await self.check_password(user, credentials.password):
            return None
        return user

    async def _count_sign_in_attempt(self, account: str) -> None:
        if self.request is None:
            return
        await count_account_attempt(self.request, account)

    async def _update(self, user: Any, update_dict: dict[str, Any]) -> Any:
        """Every change of a user goes through here (the user's own, a superuser's through
        `PATCH /users/{id}`, a reset link's). A credential change (a new password, a new
        email) ends the user's other sign-ins in the same transaction: all of them, or all
        but the one making the request when it is the user's own."""
        validated: dict[str, Any] = {}
        for field, value in update_dict.items():
            if field == "email" and value != user.email:
                if await self.user_db.get_by_email(value) is not None:
                    raise exceptions.UserAlreadyExists()
                validated["email"] = value
                validated["is_verified"] = False
            elif field == "password" and value is not None:
                await self.validate_password(value, user)
                validated["hashed_password"] = await self.hash_password(value)
            elif field != "password":
                validated[field] = value
        if "email" in validated or "hashed_password" in validated:
            await end_sign_ins(
                session=self.db.session, user_id=user.id, now=self._now(), keep=self._own(user)
            )
            # API keys survive the user's own change and a reset link. A superuser changing
            # another user's credentials is taking back an account someone else got into,
            # and whoever did may have made keys: those end too.
            if self._by_another_user(user):
                await api_keys.end_keys(session=self.db.session, user_id=user.id)
        # The adapter commits: the change and the ended sign-ins land together.
        return await self.user_db.update(user, validated)

    def _by_another_user(self, user: User) -> bool:
        """Whether this request is signed in as someone other than `user` (a superuser)."""
        if self.request is None:
            return False
        current = getattr(self.request.state, STATE_SIGN_IN, None)
        return current is not None and current.user_id != user.id

    def _own(self, user: User) -> uuid.UUID | None:
        """The sign-in making this request, when it is `user`'s own."""
        if self.request is None:
            return None
        current = getattr(self.request.state, STATE_SIGN_IN, None)
        return current.id if current is not None and current.user_id == user.id else None

    # --- reset -----------------------------------------------------------------------------

    def _fingerprint(self, user: User) -> str:
        """Binds a reset link to the stored password hash and the email it was sent to, so
        it stops working once either changes."""
        key = self.secret.encode()
        bound = f"{user.hashed_password}\x00{user.email.lower()}".encode()
        return hmac.new(key, bound, hashlib.sha256).hexdigest()

    async def forgot_password(self, user: Any, request: Request | None = None) -> None:
        if not user.is_active:
            raise exceptions.UserInactive()
        token = generate_jwt(
            {
                "sub": str(user.id),
                RESET_FINGERPRINT_CLAIM: self._fingerprint(user),
                "aud": self.reset_password_token_audience,
            },
            self.reset_password_token_secret,
            self.reset_password_token_lifetime_seconds,
        )
        await self.on_after_forgot_password(user, token, request)

    async def reset_password(
        self, token: str, password: str, request: Request | None = None
    ) -> Any:
        try:
            data = decode_jwt(
                token, self.reset_password_token_secret, [self.reset_password_token_audience]
            )
            user = await self.get(self.parse_id(data["sub"]))
            fingerprint = str(data[RESET_FINGERPRINT_CLAIM])
        except (jwt.PyJWTError, KeyError, exceptions.InvalidID, exceptions.UserNotExists):
            raise exceptions.InvalidResetPasswordToken() from None
        if not hmac.compare_digest(fingerprint, self._fingerprint(user)):
            raise exceptions.InvalidResetPasswordToken()
        if not user.is_active:
            raise exceptions.UserInactive()
        updated = await self._update(user, {"password": password})
        await self.on_after_reset_password(user, request)
        return updated

    # --- hooks -----------------------------------------------------------------------------

    async def _mail(self, *, user: User, subject: str, text: str, kind: str) -> None:
        if self.request is None:
            return
        if not await may_mail_user(self.request, user.id):
            # The account had its day's mail (RATE_LIMIT_MAIL): send nothing, answer as
            # usual, so the answer still says nothing about which accounts exist.
            MAIL_MESSAGES.labels(kind, "capped").inc()
            logger.info("mail (%s) not sent: the account reached its daily cap", kind)
            return
        # Into the outbox, committed with what the session holds (a new account with its
        # confirmation mail); a job worker sends it (app/jobs/worker.py).
        await queue_mail(
            session=self.db.session,
            user_id=user.id,
            mail=OutgoingMail(to=user.email, subject=subject, text=text, kind=kind),
            now=self._now(),
            settings=self.settings,
        )
        await commit(self.db.session)
        worker = getattr(self.request.app.state, "jobs", None)
        if worker is not None:
            worker.wake()

    async def on_after_register(self, user: User, request: Request | None = None) -> None:
        if self.settings.require_verified_email and not user.is_verified:
            await self.request_verify(user, request)

    async def _mail_signup_attempt(self, user: User) -> None:
        subject, text = signup_attempt_message(sign_in_link=f"{self.settings.link_base()}/login")
        await self._mail(user=user, subject=subject, text=text, kind="signup")

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        subject, text = reset_message(
            link=f"{self.settings.link_base()}/reset-password#token={token}",
            minutes=self.settings.reset_token_ttl_seconds // 60,
        )
        await self._mail(user=user, subject=subject, text=text, kind="reset")

    async def on_after_request_verify(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        subject, text = verify_message(
            link=f"{self.settings.link_base()}/verify-email#token={token}"
        )
        await self._mail(user=user, subject=subject, text=text, kind="verify")

    def _now(self) -> Any:
        if self.request is not None:
            return self.request.app.state.clock.now()
        from datetime import UTC, datetime

        return datetime.now(UTC)


# The manager and the strategies share the request's one UserDatabase.
UserDbDep = Annotated[UserDatabase, Depends(get_user_db)]


async def get_user_manager(request: Request, user_db: UserDbDep) -> AsyncIterator[UserManager]:
    yield UserManager(user_db, request.app.state.settings, request)


# async: FastAPI runs a plain `def` dependency in its thread pool, on every request.
async def get_bearer_strategy(request: Request, user_db: UserDbDep) -> SignInStrategy:
    return SignInStrategy(request=request, user_db=user_db, kind=BEARER)


async def get_cookie_strategy(request: Request, user_db: UserDbDep) -> SignInStrategy:
    return SignInStrategy(request=request, user_db=user_db, kind=COOKIE)


def cookie_transport(settings: Settings) -> CookieTransport:
    """The web cookie as this app's settings have it."""
    return CookieTransport(
        cookie_name=AUTH_COOKIE_NAME,
        # The cookie slides: re-sent with a fresh Max-Age as it is used (app/auth/tokens.py).
        cookie_max_age=settings.sign_in_idle_days * 86_400,
        cookie_secure=settings.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="lax",
    )


class CookieBackend(AuthenticationBackend[User, uuid.UUID]):
    """The cookie backend, with Max-Age and Secure from the settings of the app that serves
    the request (those given to `create_app`), not from the environment at import time.

    The routes and the token reader are built once at import and use only the cookie's
    name; signing in and out set the cookie with the request's settings, which the
    strategy carries.
    """

    def __init__(self) -> None:
        super().__init__(
            name="cookie",
            transport=CookieTransport(cookie_name=AUTH_COOKIE_NAME, cookie_samesite="lax"),
            get_strategy=get_cookie_strategy,
        )

    async def login(self, strategy: Strategy[User, uuid.UUID], user: User) -> Response:
        sign_in = cast(SignInStrategy, strategy)  # get_cookie_strategy's
        token = await sign_in.write_token(user)
        return await cookie_transport(sign_in.settings).get_login_response(token)

    async def logout(self, strategy: Strategy[User, uuid.UUID], user: User, token: str) -> Response:
        sign_in = cast(SignInStrategy, strategy)
        await sign_in.destroy_token(token, user)
        return await cookie_transport(sign_in.settings).get_logout_response()


bearer_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="jwt",
    transport=BearerTransport(tokenUrl="auth/jwt/login"),
    get_strategy=get_bearer_strategy,
)
cookie_backend: AuthenticationBackend[User, uuid.UUID] = CookieBackend()

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [bearer_backend, cookie_backend])
