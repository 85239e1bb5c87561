"""Export: what a download reads, and the JSON shapes it writes. Read-only services.

Messages are read in keyset batches by `seq` (never a whole conversation at once) and
written out as they arrive, so memory stays flat however long a conversation is. The
JSON layout is documented in docs/export-format.md; app/exports/downloads.py makes the
files (JSON, PDF) and app/exports/zip_export.py the ZIP.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import ChatMessage, ChatSession
from app.core.config import Settings
from app.core.errors import NotFoundError
from app.core.tenancy import owned
from app.core.validation import format_utc
from app.encryption.crypto import Keyring, keyring_of
from app.encryption.sealed import open_column
from app.history.service import (
    Position,
    SessionFilter,
    after_cursor,
    choose_search_plan,
    filtered_sessions,
    history_order,
    session_title,
)

if TYPE_CHECKING:
    from app.exports.pdf import PdfBudget

# 2: conversations are trees (`parentSeq` on every message, `headSeq` on the conversation).
EXPORT_FORMAT_VERSION = 2
# What an import reads: version 1 files are chains (each message follows the one before).
READABLE_FORMAT_VERSIONS = (1, 2)
CONVERSATION_FORMAT = "chatkeep.conversation"
ARCHIVE_FORMAT = "chatkeep.export"
MESSAGE_BATCH = 1000
SESSION_BATCH = 200

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]
# Everything but the search vector.
_session_columns = [c for c in _sessions.c if c.name != "title_tsv"]


def _opened_session(keyring: Keyring | None, row: sa.Row[Any]) -> Any:
    """A session row with its title in plaintext (exports are the owner's plaintext)."""
    if row.key_id is None:
        return row
    return SimpleNamespace(**{**row._asdict(), "title": session_title(keyring, row.user_id, row)})


def iso(value: datetime | None) -> str | None:
    """UTC, ISO 8601 with a Z, microseconds kept: what the API returns too."""
    if value is None:
        return None
    return format_utc(value)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------- reading


async def read_only_snapshot(session: AsyncSession) -> None:
    """Make the session's transaction one consistent, read-only snapshot (first statement)."""
    await session.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))


async def load_owned(*, session: AsyncSession, user_id: uuid.UUID, session_id: str) -> Any:
    row = (
        await session.execute(
            owned(_sessions, user_id, *_session_columns).where(_sessions.c.id == session_id)
        )
    ).first()
    if row is None:
        raise NotFoundError("No conversation with this id.", code="session_not_found")
    return _opened_session(keyring_of(session), row)


async def message_batch(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, after_seq: int, limit: int
) -> Sequence[Any]:
    m = _messages.c
    stmt = (
        owned(
            _messages,
            user_id,
            m.seq,
            m.parent_seq,
            m.role,
            m.content,
            m.content_sealed,
            m.key_id,
            m.image_url,
            m["metadata"].label("meta"),
            m.created_at,
        )
        .where(m.session_id == session_id, m.seq > after_seq)
        .order_by(m.seq)
        .limit(limit)
    )
    rows = (await session.execute(stmt)).all()
    keyring = keyring_of(session)
    if keyring is None and all(r.key_id is None for r in rows):
        return rows
    return [
        SimpleNamespace(
            **{
                **r._asdict(),
                "content": open_column(
                    keyring,
                    ChatMessage,
                    "content",
                    plain=r.content,
                    sealed=r.content_sealed,
                    key_id=r.key_id,
                    user_id=user_id,
                    row=(session_id, r.seq),
                ),
            }
        )
        for r in rows
    ]


async def iter_messages(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, batch: int = MESSAGE_BATCH
) -> AsyncIterator[Sequence[Any]]:
    """The conversation's messages in seq order, a batch at a time."""
    after = 0
    while True:
        rows = await message_batch(
            session=session, user_id=user_id, session_id=session_id, after_seq=after, limit=batch
        )
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


async def iter_sessions(
    *, session: AsyncSession, user_id: uuid.UUID, flt: SessionFilter, batch: int = SESSION_BATCH
) -> AsyncIterator[sa.Row[Any]]:
    """The user's sessions matching the filter, newest activity first, in keyset batches."""
    plan = await choose_search_plan(session=session, user_id=user_id, q=flt.q)
    keyring = keyring_of(session)
    position: Position | None = None
    while True:
        stmt = filtered_sessions(
            *_session_columns, user_id=user_id, flt=flt, plan=plan, keyring=keyring
        )
        if position is not None:
            stmt = stmt.where(after_cursor(*position))
        rows = (await session.execute(stmt.order_by(*history_order()).limit(batch))).all()
        for row in rows:
            yield _opened_session(keyring, row)
        if len(rows) < batch:
            return
        position = (rows[-1].pinned, rows[-1].last_activity_at, rows[-1].id)


# ------------------------------------------------------------------------------ JSON


def message_json(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "parentSeq": row.parent_seq,
        "role": row.role,
        "content": row.content,
        "imageUrl": row.image_url,
        "createdAt": iso(row.created_at),
        # A reply: the model that wrote it (also in `metadata`); null when not known.
        "model": (row.meta or {}).get("model") if row.role == "assistant" else None,
        "metadata": row.meta,
    }


def conversation_head(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "status": row.status,
        "createdAt": iso(row.created_at),
        "lastActivityAt": iso(row.last_activity_at),
        "archivedAt": iso(row.archived_at),
        "pinned": row.pinned,
        "tags": list(row.tags),
        "importedFrom": row.imported_from,
        "messageCount": row.message_count,
        "headSeq": row.head_seq,
    }


def document_head(kind: str, now: datetime) -> dict[str, Any]:
    return {"format": kind, "version": EXPORT_FORMAT_VERSION, "exportedAt": iso(now)}


# ------------------------------------------------------------------------------- PDF

_IMAGE_URL = re.compile(
    r"/api/images/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
IMAGE_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def stored_image_id(image_url: str | None) -> uuid.UUID | None:
    """The stored image a message's `imageUrl` names (`/api/images/<uuid>`), if any."""
    match = _IMAGE_URL.fullmatch(image_url or "")
    return uuid.UUID(match.group(1)) if match else None


def pdf_budget(settings: Settings) -> PdfBudget:
    from app.exports.pdf import PdfBudget

    return PdfBudget(max_pages=settings.pdf_max_pages, max_seconds=settings.pdf_time_budget_seconds)
