"""Export: what a download reads, and the JSON shapes it writes. Read-only services.

Messages are read in keyset batches by `seq` (never a whole conversation at once) and
written out as they arrive, so memory stays flat however long a conversation is. The
statements are in `app/exports/repository.py`. The JSON layout is documented in
docs/export-format.md; app/exports/downloads.py makes the files (JSON, PDF) and
app/exports/zip_export.py the ZIP.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import InvalidInputError, NotFoundError
from app.core.validation import format_utc
from app.exports.repository import ExportRepository
from app.history.repository import SessionFilter, StatusFilter, normalize_query

if TYPE_CHECKING:
    from app.typesetting.pdf import PdfBudget

# 2: conversations are trees (`parentSeq` on every message, `headSeq` on the conversation).
EXPORT_FORMAT_VERSION = 2
# What an import reads: version 1 files are chains (each message follows the one before).
READABLE_FORMAT_VERSIONS = (1, 2)
CONVERSATION_FORMAT = "chatkeep.conversation"
ARCHIVE_FORMAT = "chatkeep.export"
MESSAGE_BATCH = 1000
SESSION_BATCH = 200


def everything_filter(
    *, status: StatusFilter, q: str | None, date_from: date | None, date_to: date | None
) -> SessionFilter:
    """What an export of everything takes (the ZIP at once, or made by a job): the history
    filter of its query, `from` no later than `to`."""
    if date_from and date_to and date_from > date_to:
        raise InvalidInputError("`from` is after `to`.", code="invalid_date_range")
    return SessionFilter(status=status, q=normalize_query(q), date_from=date_from, date_to=date_to)


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
    row = await ExportRepository(session, user_id).conversation(session_id)
    if row is None:
        raise NotFoundError("No conversation with this id.", code="session_not_found")
    return row


async def message_batch(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, after_seq: int, limit: int
) -> Sequence[Any]:
    return await ExportRepository(session, user_id).message_batch(
        session_id, after_seq=after_seq, limit=limit
    )


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
) -> AsyncIterator[Any]:
    """The user's sessions matching the filter, newest activity first, in keyset batches."""
    async for row in ExportRepository(session, user_id).sessions(flt, batch=batch):
        yield row


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


def summary_json(summary: Any) -> dict[str, Any]:
    return {
        "throughSeq": summary.through_seq,
        "text": summary.text,
        "model": summary.model,
        "createdAt": iso(summary.created_at),
    }


async def conversation_summaries(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> list[dict[str, Any]]:
    """What the model summarised of the conversation's long paths (`summaries`)."""
    found = await ExportRepository(session, user_id).summaries(session_id)
    return [summary_json(s) for s in found]


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
    from app.typesetting.pdf import PdfBudget

    return PdfBudget(max_pages=settings.pdf_max_pages, max_seconds=settings.pdf_time_budget_seconds)
