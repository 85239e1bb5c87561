"""Deleting an account and gathering all of it: work that spans every domain's tables."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.account.repository import AccountRepository
from app.auth import service as auth_service
from app.auth import sign_ins as sign_in_service
from app.auth.models import AccountEvent, User
from app.conversations import retention
from app.core.config import Settings
from app.exports import zip_export
from app.exports.downloads import Download
from app.history.service import SessionFilter
from app.ratelimit.service import load_overrides

ACCOUNT_FILE = "account.json"


async def delete_account(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> dict[str, int]:
    """Deletes every row of the user, table by table, then the user, and records an
    audit event holding only the user's id and the row counts. The caller's transaction
    makes it all or nothing."""
    counts = await AccountRepository(session, user_id).delete_everything()
    session.add(AccountEvent(subject_id=user_id, event="account_deleted", at=now, detail=counts))
    await session.flush()
    return counts


async def my_data(
    *,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    user: User,
    settings: Settings,
    now: datetime,
) -> Callable[[], Awaitable[Download]]:
    """ "Download my data": the ZIP export of every conversation (not the temporary ones,
    which are not kept) plus `account.json` (profile, sign-ins, settings: the rate-limit
    overrides, the retention setting and every retention run's counts). Reads the account
    now, in the request's transaction; returns what makes the archive (in short
    transactions of its own, once the request's has ended: app/exports/downloads.py)."""
    sign_ins = await sign_in_service.list_sign_ins(
        session=session,
        user_id=user.id,
        now=now,
        idle_seconds=sign_in_service.idle_seconds(settings),
    )
    overrides = await load_overrides(session=session, user_id=user.id)
    # The retention setting with every run's counts (the Settings page shows the latest).
    kept = await retention.standing(
        session=session, user_id=user.id, maximum=settings.retention_max_days, runs=None
    )
    document = auth_service.account_document(
        user=user,
        sign_ins=sign_ins,
        settings={
            "rateLimitOverrides": overrides,
            "retention": kept.model_dump(mode="json", by_alias=True),
        },
        now=now,
    )
    account = json.dumps(document, ensure_ascii=False, indent=2).encode()
    return partial(
        zip_export.archive,
        sessionmaker=sessionmaker,
        user_id=user.id,
        flt=SessionFilter(status="all"),
        now=now,
        data_dir=settings.data_dir,
        extra_files={ACCOUNT_FILE: account},
    )
