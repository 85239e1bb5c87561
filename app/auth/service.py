"""User operations for the CLI and tests (outside HTTP)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime

import sqlalchemy as sa
from fastapi_users.exceptions import InvalidPasswordException, UserAlreadyExists
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.auth.db import UserDatabase, live_filter
from app.auth.db import end_sign_ins as end_sign_ins  # the routes' one way to end them
from app.auth.manager import UserManager
from app.auth.models import AccountEvent, SignIn, User
from app.auth.schemas import UserCreate
from app.core.config import Settings
from app.core.db import metadata
from app.core.errors import ConflictError, InvalidInputError, NotFoundError
from app.core.tenancy import owned, owned_delete, owned_update


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
        await session.commit()
        with contextlib.suppress(AttributeError):
            return bool(result.rowcount)  # type: ignore[attr-defined]
        return False


# --- sign-ins (services: keyword-only, flush only) ---------------------------------------


async def list_sign_ins(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime, idle_seconds: int
) -> list[SignIn]:
    """The user's live sign-ins, newest first."""
    rows = await session.scalars(
        owned(SignIn, user_id)
        .where(live_filter(now, idle_seconds))
        .order_by(col(SignIn.last_used_at).desc(), col(SignIn.id))
    )
    return list(rows)


async def end_sign_in(
    *, session: AsyncSession, user_id: uuid.UUID, sign_in_id: uuid.UUID, now: datetime
) -> None:
    """Ends one of the user's sign-ins; another user's (or an ended one) is a 404."""
    result = await session.execute(
        owned_update(SignIn, user_id)
        .where(col(SignIn.id) == sign_in_id, col(SignIn.ended_at).is_(None))
        .values(ended_at=now)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFoundError("No such sign-in.", code="sign_in_not_found")
    await session.flush()


# --- deleting an account, and what it holds ----------------------------------------------


def _tenant_tables() -> list[sa.Table]:
    """Every table with a `user_id` column, children before parents."""
    import app.models  # noqa: F401  (every domain's tables)

    return [t for t in reversed(metadata.sorted_tables) if "user_id" in t.c]


async def delete_account(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> dict[str, int]:
    """Deletes every row of the user, table by table, then the user, and records an
    audit event holding only the user's id and the row counts. The caller's transaction
    makes it all or nothing."""
    counts: dict[str, int] = {}
    for table in _tenant_tables():
        result = await session.execute(owned_delete(table, user_id))
        counts[table.name] = int(getattr(result, "rowcount", 0) or 0)
    await session.execute(sa.delete(User).where(col(User.id) == user_id))
    session.add(AccountEvent(subject_id=user_id, event="account_deleted", at=now, detail=counts))
    await session.flush()
    return counts


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
