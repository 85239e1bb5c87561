"""User operations for the CLI and tests (outside HTTP)."""

from __future__ import annotations

import contextlib
from datetime import datetime

from fastapi_users.exceptions import InvalidPasswordException, UserAlreadyExists
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.db import UserDatabase
from app.auth.manager import UserManager
from app.auth.models import SignIn, User
from app.auth.schemas import UserCreate
from app.core.config import Settings
from app.core.db import commit
from app.core.errors import AppError, ConflictError, InvalidInputError


async def create_user(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    email: str,
    password: str,
    is_superuser: bool = False,
) -> User:
    async with sessionmaker() as session:
        manager = UserManager(UserDatabase(session, User), settings)
        try:
            return await manager.create(
                UserCreate(
                    email=email, password=password, is_superuser=is_superuser, is_verified=True
                )
            )
        except UserAlreadyExists as exc:
            raise ConflictError(f"A user with email {email} already exists.") from exc
        except InvalidPasswordException as exc:
            raise InvalidInputError(str(exc.reason), code="invalid_password") from None


async def promote_to_superuser(
    *, sessionmaker: async_sessionmaker[AsyncSession], email: str
) -> bool:
    from sqlalchemy import func, update

    async with sessionmaker() as session:
        result = await session.execute(
            update(User).where(func.lower(User.email) == email.lower()).values(is_superuser=True)
        )
        await commit(session)
        with contextlib.suppress(AttributeError):
            return bool(result.rowcount)  # type: ignore[attr-defined]
        return False


class CredentialsError(AppError):
    status_code = 400
    code = "wrong_current_password"
    title = "Current password needed"


async def require_current_password(manager: UserManager, user: User, given: str | None) -> None:
    """Email, password and account deletion need the current password."""
    if not given:
        raise CredentialsError(
            "Type your current password to change your email or password.",
            code="current_password_required",
        )
    if not await manager.check_password(user, given):
        raise CredentialsError("Your current password is not right.")


def account_document(
    *, user: User, sign_ins: list[SignIn], settings: dict[str, object], now: datetime
) -> dict[str, object]:
    """account.json of "Download my data": the profile, the sign-ins, the settings."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "format": "chatkeep.account",
        "version": 1,
        "exportedAt": iso(now),
        "profile": {
            "id": str(user.id),
            "email": user.email,
            "isVerified": user.is_verified,
            "isSuperuser": user.is_superuser,
            "createdAt": iso(user.created_at),
        },
        "signIns": [
            {
                "id": str(s.id),
                "kind": s.kind,
                "device": s.device,
                "ip": s.ip,
                "createdAt": iso(s.created_at),
                "lastUsedAt": iso(s.last_used_at),
                "expiresAt": iso(s.expires_at),
            }
            for s in sign_ins
        ],
        "settings": settings,
    }
