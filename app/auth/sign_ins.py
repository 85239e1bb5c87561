"""Sign-ins: list them, end one, end all but one (services: keyword-only, flush only).

Every credential change (password, email, reset) ends the other sign-ins through
`end_sign_ins`, which leaves personal API keys alone (the user manager also ends them when
a superuser makes the change). "Sign out everywhere"
(`sign_out_everywhere`) ends the other sign-ins and every API key.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import service as api_keys
from app.auth.models import SignIn
from app.auth.repository import SignInRepository
from app.core.config import Settings
from app.core.errors import NotFoundError


def idle_seconds(settings: Settings) -> int:
    """How long a sign-in may go unused before it ends."""
    return settings.sign_in_idle_days * 86_400


async def list_sign_ins(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime, idle_seconds: int
) -> list[SignIn]:
    """The user's live sign-ins, newest first."""
    return await SignInRepository(session, user_id).live_newest_first(now, idle_seconds)


async def end_sign_in(
    *, session: AsyncSession, user_id: uuid.UUID, sign_in_id: uuid.UUID, now: datetime
) -> None:
    """Ends one of the user's sign-ins; another user's (or an ended one) is a 404."""
    if not await SignInRepository(session, user_id).end(sign_in_id, now):
        raise NotFoundError("No such sign-in.", code="sign_in_not_found")
    await session.flush()


async def end_sign_ins(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    now: datetime,
    keep: uuid.UUID | None = None,
) -> int:
    """Ends every sign-in of the user but `keep`; returns how many were live."""
    ended = await SignInRepository(session, user_id).end_all(now, keep=keep)
    await session.flush()
    return ended


async def sign_out_everywhere(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime, keep: uuid.UUID
) -> tuple[int, int]:
    """Ends every sign-in of the user but `keep`, and revokes every API key: what "sign
    out everywhere" means. Returns (sign-ins ended, keys revoked)."""
    ended = await end_sign_ins(session=session, user_id=user_id, now=now, keep=keep)
    keys = await api_keys.end_keys(session=session, user_id=user_id)
    return ended, keys
