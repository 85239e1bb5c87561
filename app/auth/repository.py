"""Every statement over sign-ins, and the lookups that turn a credential into a user.

`SignInRepository(session, owner_id)` is built for one owner: each statement names
`user_id = :owner`. `CredentialRepository(session)` finds the user a request presents a
credential for (a token's user and sign-in, or an API key's hash): the credential is the
key, as a share link's token is. `SignInOperatorRepository(session)` is the cross-user
side: forgetting ended sign-ins, and telling which of a process's streams still have a
live sign-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import class_mapper, make_transient_to_detached
from sqlmodel import SQLModel, col

from app.apikeys.models import ApiKey
from app.auth.models import AccountEvent, SignIn, User
from app.core.prebuilt import compiled, execute
from app.core.tenancy import owned, owned_update

# The two kinds of sign-in (app/auth/tokens.py says how they differ).
COOKIE = "cookie"
BEARER = "bearer"

_Entity = TypeVar("_Entity", bound=SQLModel)


def live_filter(
    now: Any, idle_seconds: int = 0, *, idle_since: Any = None, bearer: Any = BEARER
) -> Any:
    """The rows that still sign someone in at `now` (values or bound parameters)."""
    if idle_since is None:
        idle_since = now - timedelta(seconds=idle_seconds)
    return sa.and_(
        col(SignIn.ended_at).is_(None),
        col(SignIn.expires_at) > now,
        sa.or_(col(SignIn.kind) == bearer, col(SignIn.last_used_at) > idle_since),
    )


# Every authenticated request runs one of these two: flat Core statements over the
# tables, compiled once (`app.core.prebuilt`), their columns prefixed per table.
_USER_TABLE: sa.Table = User.__table__  # type: ignore[attr-defined]
_SIGN_IN_TABLE: sa.Table = SignIn.__table__  # type: ignore[attr-defined]
_API_KEY_TABLE: sa.Table = ApiKey.__table__  # type: ignore[attr-defined]


def _columns(table: sa.Table, prefix: str) -> list[sa.Label[Any]]:
    return [c.label(prefix + c.name) for c in table.columns]


# The user of a token and its sign-in, with the live-sign-in rules of `live_filter`.
_USER_WITH_LIVE_SIGN_IN = compiled(
    sa.select(*_columns(_USER_TABLE, "u_"), *_columns(_SIGN_IN_TABLE, "s_"))
    .select_from(_USER_TABLE.join(_SIGN_IN_TABLE, _SIGN_IN_TABLE.c.user_id == _USER_TABLE.c.id))
    .where(
        _USER_TABLE.c.id == sa.bindparam("user_id"),
        _SIGN_IN_TABLE.c.id == sa.bindparam("sign_in_id"),
        live_filter(
            sa.bindparam("now"),
            idle_since=sa.bindparam("idle_since"),
            bearer=sa.literal_column(f"'{BEARER}'"),
        ),
    )
)

# A request with an API key: the key's row exists while the key works.
_USER_WITH_API_KEY = compiled(
    sa.select(*_columns(_USER_TABLE, "u_"), *_columns(_API_KEY_TABLE, "k_"))
    .select_from(_USER_TABLE.join(_API_KEY_TABLE, _API_KEY_TABLE.c.user_id == _USER_TABLE.c.id))
    .where(_API_KEY_TABLE.c.key_hash == sa.bindparam("key_hash"))
)


def _entity(model: type[_Entity], row: Mapping[Any, Any], prefix: str) -> _Entity:
    """An entity of `model` from a row's `prefix`-ed columns, as the ORM loads one
    (without its per-row machinery): detached, its attributes as stored."""
    mapper = class_mapper(model)
    entity: _Entity = mapper.class_manager.new_instance()
    entity.__dict__.update(
        {prop.key: row[prefix + prop.columns[0].name] for prop in mapper.column_attrs}
    )
    make_transient_to_detached(entity)
    return entity


class CredentialRepository:
    """The user behind a credential, in one query each.

    The user comes back in the session (as if loaded), so that a route may change it; the
    sign-in or key row comes back detached: only read, and touched by its own UPDATE."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _user(self, row: Mapping[Any, Any]) -> User:
        """The session's own copy when it holds one (as an ORM load would give)."""
        held = self.session.identity_map.get(
            class_mapper(User).identity_key_from_primary_key((row["u_id"],))
        )
        if isinstance(held, User):
            return held
        user = _entity(User, row, "u_")
        self.session.add(user)
        return user

    async def user_with_sign_in(
        self, user_id: uuid.UUID, sign_in_id: uuid.UUID, *, now: Any, idle_seconds: int
    ) -> tuple[User, SignIn] | None:
        """The user of a token and its sign-in row, if that sign-in is the user's and live."""
        params = {
            "user_id": user_id,
            "sign_in_id": sign_in_id,
            "now": now,
            "idle_since": now - timedelta(seconds=idle_seconds),
        }
        result = await execute(self.session, _USER_WITH_LIVE_SIGN_IN, params)
        row = result.mappings().one_or_none()
        if row is None:
            return None
        return self._user(row), _entity(SignIn, row, "s_")

    async def user_with_api_key(self, key_hash: str) -> tuple[User, ApiKey] | None:
        """The user of an API key and the key's row, if the key is live."""
        result = await execute(self.session, _USER_WITH_API_KEY, {"key_hash": key_hash})
        row = result.mappings().one_or_none()
        if row is None:
            return None
        return self._user(row), _entity(ApiKey, row, "k_")


class SignInRepository:
    """One owner's sign-ins."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def live_newest_first(self, now: datetime, idle_seconds: int) -> list[SignIn]:
        rows = await self.session.scalars(
            owned(SignIn, self.owner_id)
            .where(live_filter(now, idle_seconds))
            .order_by(col(SignIn.last_used_at).desc(), col(SignIn.id))
        )
        return list(rows)

    async def end(self, sign_in_id: uuid.UUID, now: datetime, *, only_live: bool = True) -> bool:
        """Ends one sign-in; False when the owner has no such one (not yet ended)."""
        stmt = owned_update(SignIn, self.owner_id).where(col(SignIn.id) == sign_in_id)
        if only_live:
            stmt = stmt.where(col(SignIn.ended_at).is_(None))
        result = await self.session.execute(stmt.values(ended_at=now))
        return bool(getattr(result, "rowcount", 0))

    async def end_all(self, now: datetime, *, keep: uuid.UUID | None = None) -> int:
        """Ends every live sign-in but `keep`; returns how many."""
        stmt = owned_update(SignIn, self.owner_id).where(col(SignIn.ended_at).is_(None))
        if keep is not None:
            stmt = stmt.where(col(SignIn.id) != keep)
        result = await self.session.execute(stmt.values(ended_at=now))
        return int(getattr(result, "rowcount", 0) or 0)

    async def touch(self, sign_in_id: uuid.UUID, now: datetime) -> None:
        """Records use of a sign-in."""
        await self.session.execute(
            owned_update(SignIn, self.owner_id)
            .where(col(SignIn.id) == sign_in_id)
            .values(last_used_at=now)
        )


class SignInOperatorRepository:
    """Every user's sign-ins, for the sweep and the stream checks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_dead(self, now: datetime, *, batch: int | None = None) -> int:
        """Deletes sign-ins that can never sign anyone in again: ended, or expired, at or
        before `now` (up to `batch` of them, rows others hold skipped); returns how many."""
        dead = sa.or_(col(SignIn.ended_at) <= now, col(SignIn.expires_at) < now)
        if batch is None:
            result = await self.session.execute(sa.delete(SignIn).where(dead))
            return int(getattr(result, "rowcount", 0) or 0)
        picked = (
            sa.select(col(SignIn.id)).where(dead).limit(batch).with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(
            sa.delete(SignIn).where(col(SignIn.id).in_(picked)).returning(col(SignIn.id))
        )
        return len(rows.all())

    async def live_among(
        self, ids: Collection[uuid.UUID], now: datetime, idle_seconds: int
    ) -> set[uuid.UUID]:
        """Which of these sign-ins still sign someone in (one query)."""
        rows = await self.session.execute(
            sa.select(col(SignIn.id)).where(
                col(SignIn.id).in_(list(ids)), live_filter(now, idle_seconds)
            )
        )
        return {row[0] for row in rows}


class AccountEventOperatorRepository:
    """The account-event audit trail, for its purge."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_before(self, before: datetime, *, batch: int) -> int:
        """Deletes up to `batch` audit rows written before `before`; returns how many."""
        picked = (
            sa.select(col(AccountEvent.id))
            .where(col(AccountEvent.at) < before)
            .order_by(col(AccountEvent.at))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(
            sa.delete(AccountEvent)
            .where(col(AccountEvent.id).in_(picked))
            .returning(col(AccountEvent.id))
        )
        return len(rows.all())
