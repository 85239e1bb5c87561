"""Personal API keys: make one, list them, revoke one, end them all, and recognise one.

A key is `ck_` and 43 URL-safe characters (256 random bits). The table holds only a keyed
hash of it: HMAC-SHA256 under a key derived from SECRET_KEY, so a copy of the database
alone cannot be turned back into keys, nor checked against guesses. The hash is exact, so
the lookup is one indexed equality.

What ends keys: revoking one (DELETE /api/keys/{id}, or signing out with it), "sign out
everywhere" (POST /api/me/sign-ins/end-others), deleting the account (the row goes with
the user) and a superuser changing the user's password or email. The user's own password
or email change, or a reset, ends the other sign-ins but not the keys: those go through
`end_sign_ins` alone (app/auth/sign_ins.py), which never touches this table.

Services here flush; the caller commits. The statements are in `app/apikeys/repository.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import PREFIX_CHARS, ApiKey
from app.apikeys.repository import ApiKeyRepository
from app.core.errors import ConflictError, NotFoundError

KEY_PREFIX = "ck_"
KEY_BYTES = 32
_KEY_PATTERN = re.compile(r"ck_[A-Za-z0-9_-]{43}")
# Domain separation: the HMAC key of API keys is not SECRET_KEY itself.
_DERIVATION_LABEL = b"chatkeep api key hash v1"


def is_api_key(token: str) -> bool:
    """Whether a bearer token has the shape of an API key (checked before any work)."""
    return len(token) == len(KEY_PREFIX) + 43 and _KEY_PATTERN.fullmatch(token) is not None


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(*, secret_key: str, key: str) -> str:
    """The stored form of `key`: HMAC-SHA256 under a key derived from SECRET_KEY."""
    derived = hmac.new(secret_key.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()
    return hmac.new(derived, key.encode(), hashlib.sha256).hexdigest()


async def create_key(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    name: str,
    secret_key: str,
    now: datetime,
    max_keys: int,
) -> tuple[ApiKey, str]:
    """Makes a key; returns its row and the key itself (the only time it is known).

    The user's keys are counted under a transaction lock on the user, so two requests at
    once cannot both take the last place."""
    repo = ApiKeyRepository(session, user_id)
    await repo.lock()
    if await repo.count() >= max_keys:
        raise ConflictError(
            f"You have {max_keys} API keys, the most an account may have: revoke one first.",
            code="too_many_api_keys",
        )
    key = new_key()
    row = ApiKey(
        user_id=user_id,
        name=name,
        prefix=key[:PREFIX_CHARS],
        key_hash=key_hash(secret_key=secret_key, key=key),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row, key


async def list_keys(*, session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    """The user's keys, newest first."""
    return await ApiKeyRepository(session, user_id).newest_first()


async def revoke_key(*, session: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Revokes one of the user's keys; another user's (or a revoked one) is a 404."""
    if not await ApiKeyRepository(session, user_id).delete(key_id):
        raise NotFoundError("No such API key.", code="api_key_not_found")
    await session.flush()


async def revoke_own_key(
    *, session: AsyncSession, user_id: uuid.UUID, secret_key: str, key: str
) -> None:
    """Revokes the key itself (signing out with it); a key that is not live does nothing."""
    digest = key_hash(secret_key=secret_key, key=key)
    await ApiKeyRepository(session, user_id).delete_by_hash(digest)
    await session.flush()


async def end_keys(*, session: AsyncSession, user_id: uuid.UUID) -> int:
    """Revokes every key of the user; returns how many there were."""
    ended = await ApiKeyRepository(session, user_id).delete_all()
    await session.flush()
    return ended
