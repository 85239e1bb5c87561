"""The SQL of key rotation: every user's sealed rows, read and sealed again.

Key rotation is an operator's job, so its one repository is an operator repository
(`KeyRotationOperatorRepository`): it reads across users, and opens and seals each row with
its own owner (the owner is part of what a sealed value is bound to).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import TITLE_SEQ, ChatMessage, ChatSession
from app.conversations.repository import upsert_search_tokens
from app.encryption.blind_index import token_row
from app.encryption.crypto import Keyring
from app.encryption.sealed import KEY_ID_COLUMN, SPECS, open_column, seal_values


def _table(model: type) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def _not_on(table: sa.Table, kid: str) -> sa.ColumnElement[bool]:
    key = table.c[KEY_ID_COLUMN]
    return sa.or_(key.is_(None), key != kid)


class KeyRotationOperatorRepository:
    """Every user's rows of the sealed tables, for key rotation."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count_not_on(self, model: type, kid: str) -> int:
        """Rows of `model`'s table not sealed with the key `kid` (plaintext ones too)."""
        table = _table(model)
        count = await self.session.scalar(
            sa.select(sa.func.count()).select_from(table).where(_not_on(table, kid))
        )
        return int(count or 0)

    async def rotate_batch(
        self, keyring: Keyring, model: type, after: tuple[Any, ...] | None, limit: int
    ) -> tuple[int, tuple[Any, ...] | None]:
        """Seals the next `limit` rows after the primary key `after` that are not on the
        newest key again with it (rows others hold locked are skipped), with the blind
        index of messages and titles; returns (rows rewritten, last primary key seen)."""
        spec = SPECS[model]
        table = _table(model)
        pk = list(table.primary_key.columns)
        kid = keyring.primary.kid
        wanted = {c.name for c in pk} | {"user_id", KEY_ID_COLUMN} | set(spec.row_key)
        for c in spec.columns:
            wanted |= {c.name, c.stored}
        # An operator's job: every user's rows (each is opened and sealed with its own owner).
        stmt = sa.select(*(table.c[n] for n in sorted(wanted))).where(_not_on(table, kid))
        if after is not None:
            stmt = stmt.where(sa.tuple_(*pk) > sa.tuple_(*after))
        rows = (
            await self.session.execute(
                stmt.order_by(*pk).limit(limit).with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return 0, None
        updates: list[dict[str, Any]] = []
        tokens: list[dict[str, Any]] = []
        for row in rows:
            values = row._mapping
            row_key = tuple(values[k] for k in spec.row_key)
            plain = {
                c.name: open_column(
                    keyring,
                    model,
                    c.name,
                    plain=values[c.name],
                    sealed=values[c.stored],
                    key_id=values[KEY_ID_COLUMN],
                    user_id=values["user_id"],
                    row=row_key,
                )
                for c in spec.columns
            }
            source = {**values, **plain}
            _, sealed = seal_values(keyring, spec, source.__getitem__)
            updates.append(
                {
                    **{f"pk_{c.name}": values[c.name] for c in pk},
                    **{f"v_{k}": v for k, v in sealed.items()},
                }
            )
            if model is ChatMessage:
                tokens.append(
                    token_row(
                        keyring,
                        user_id=values["user_id"],
                        session_id=values["session_id"],
                        seq=values["seq"],
                        text=plain["content"],
                    )
                )
            elif model is ChatSession:
                tokens.append(
                    token_row(
                        keyring,
                        user_id=values["user_id"],
                        session_id=values["id"],
                        seq=TITLE_SEQ,
                        text=plain["title"],
                    )
                )
        columns = [k[2:] for k in updates[0] if k.startswith("v_")]
        update = (
            sa.update(table)
            .where(*(c == sa.bindparam(f"pk_{c.name}") for c in pk))
            .values({name: sa.bindparam(f"v_{name}") for name in columns})
        )
        await self.session.execute(update, updates)
        if tokens:
            await self.session.execute(upsert_search_tokens(tokens))
        last = rows[-1]._mapping
        return len(rows), tuple(last[c.name] for c in pk)
