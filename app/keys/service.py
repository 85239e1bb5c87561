"""Key rotation: every sealed (or still plaintext) row onto the newest key, online.

`rotate` walks each table with sealed content in primary-key order, a batch at a time,
each batch its own short transaction: `SELECT ... FOR UPDATE SKIP LOCKED` the next rows
not on the newest key, open them with the key they name (or take the plaintext of a row
written before encryption was on), seal them again with the newest key, and rebuild the
blind-index row of each message and title. Rows a running chat holds locked are skipped
and taken by the next pass. Stopping at any point loses nothing: a new run only finds
the rows still to do. The statements are in `app/keys/repository.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations.models import AuditEvent, ChatMessage, ChatSession, PathSummary
from app.core.db import unit_of_work
from app.core.errors import AppError
from app.drafts.models import PostDraft, PostDraftVersion, PublishedPost, StoredImage
from app.encryption.crypto import Keyring, generate_key_line, keyring_of
from app.keys.repository import KeyRotationOperatorRepository
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
    PathSummary,
)
MAX_PASSES = 20


@dataclass
class RotationReport:
    key_id: str
    rewritten: dict[str, int] = field(default_factory=dict)
    passes: int = 0


Progress = Callable[[str, int], None]


def table_name(model: type) -> str:
    name: str = model.__table__.name  # type: ignore[attr-defined]
    return name


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
            out[table_name(model)] = await KeyRotationOperatorRepository(db).count_not_on(
                model, keyring.primary.kid
            )
    return out


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
            name = table_name(model)
            limit = max(1, int(batch_size * _BATCH_SHARE.get(model, 1.0)))
            after: tuple[Any, ...] | None = None
            while True:
                async with unit_of_work(sessionmaker) as db:
                    done, after = await KeyRotationOperatorRepository(db).rotate_batch(
                        keyring, model, after, limit
                    )
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
