"""Key rotation: every sealed (or still plaintext) row onto the newest key, online.

`rotate` walks each table with sealed content in primary-key order, a batch at a time,
each batch its own short transaction: `SELECT ... FOR UPDATE SKIP LOCKED` the next rows
not on the newest key, open them with the key they name (or take the plaintext of a row
written before encryption was on), seal them again with the newest key, and rebuild the
blind-index row of each message and title. Rows a running chat holds locked are skipped
and taken by the next pass. Stopping at any point loses nothing: a new run only finds
the rows still to do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import blind_index
from app.conversations.models import TITLE_SEQ, AuditEvent, ChatMessage, ChatSession
from app.core.db import unit_of_work
from app.core.errors import AppError
from app.drafts.models import PostDraft, PostDraftVersion, PublishedPost, StoredImage
from app.encryption.crypto import Keyring, generate_key_line, keyring_of
from app.encryption.sealed import KEY_ID_COLUMN, SPECS, open_column, seal_values
from app.sharing.models import SharedLink

__all__ = ["RotationReport", "generate_key_line", "remaining", "rotate"]

# Image rows are large: fewer of them per transaction.
_BATCH_SHARE: dict[type, float] = {StoredImage: 0.05}
MODELS: tuple[type, ...] = (
    ChatSession,
    ChatMessage,
    AuditEvent,
    PostDraft,
    PostDraftVersion,
    PublishedPost,
    StoredImage,
    SharedLink,
)
MAX_PASSES = 20


@dataclass
class RotationReport:
    key_id: str
    rewritten: dict[str, int] = field(default_factory=dict)
    passes: int = 0


Progress = Callable[[str, int], None]


def _table(model: type) -> sa.Table:
    return model.__table__  # type: ignore[attr-defined,no-any-return]


def _not_on(table: sa.Table, kid: str) -> sa.ColumnElement[bool]:
    key = table.c[KEY_ID_COLUMN]
    return sa.or_(key.is_(None), key != kid)


async def _keyring(sessionmaker: async_sessionmaker[AsyncSession]) -> Keyring:
    async with sessionmaker() as db:
        keyring = keyring_of(db)
    if keyring is None:
        raise AppError(
            "ENCRYPTION_KEYS is not set: there is no key to rotate to "
            "(generate one with `python -m app keys generate`).",
            code="encryption_off",
        )
    return keyring


async def remaining(*, sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Rows per table not yet on the newest key (a full count: for reports and tests)."""
    keyring = await _keyring(sessionmaker)
    out: dict[str, int] = {}
    async with sessionmaker() as db:
        for model in MODELS:
            table = _table(model)
            count = await db.scalar(
                sa.select(sa.func.count())
                .select_from(table)
                .where(_not_on(table, keyring.primary.kid))
            )
            out[table.name] = int(count or 0)
    return out


async def _rotate_batch(
    db: AsyncSession, keyring: Keyring, model: type, after: tuple[Any, ...] | None, limit: int
) -> tuple[int, tuple[Any, ...] | None]:
    """One transaction's worth; returns (rows rewritten, last primary key seen)."""
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
        await db.execute(stmt.order_by(*pk).limit(limit).with_for_update(skip_locked=True))
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
                blind_index.token_row(
                    keyring,
                    user_id=values["user_id"],
                    session_id=values["session_id"],
                    seq=values["seq"],
                    text=plain["content"],
                )
            )
        elif model is ChatSession:
            tokens.append(
                blind_index.token_row(
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
    await db.execute(update, updates)
    if tokens:
        await db.execute(blind_index.upsert(tokens))
    last = rows[-1]._mapping
    return len(rows), tuple(last[c.name] for c in pk)


async def rotate(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    batch_size: int = 500,
    pause_seconds: float = 0.0,
    on_progress: Progress | None = None,
) -> RotationReport:
    """Re-seal every row not on the newest key (and seal rows stored before encryption
    was turned on), in small committed batches; safe to stop and run again."""
    keyring = await _keyring(sessionmaker)
    report = RotationReport(key_id=keyring.primary.kid)
    left: dict[str, int] = {}
    for n in range(1, MAX_PASSES + 1):
        report.passes = n
        for model in MODELS:
            name = _table(model).name
            limit = max(1, int(batch_size * _BATCH_SHARE.get(model, 1.0)))
            after: tuple[Any, ...] | None = None
            while True:
                async with unit_of_work(sessionmaker) as db:
                    done, after = await _rotate_batch(db, keyring, model, after, limit)
                if after is None:
                    break
                report.rewritten[name] = report.rewritten.get(name, 0) + done
                if on_progress is not None:
                    on_progress(name, report.rewritten[name])
                if pause_seconds:
                    await asyncio.sleep(pause_seconds)
        left = await remaining(sessionmaker=sessionmaker)
        if not any(left.values()):
            return report
        # Rows held by running chats were skipped: another pass once they let go.
        await asyncio.sleep(min(1.0, 0.05 * n))
    raise AppError(
        f"Some rows stayed locked through {MAX_PASSES} passes: {left}. Run it again.",
        code="rotation_incomplete",
    )
