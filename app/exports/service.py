"""Export: one conversation as JSON or PDF, all of them as a ZIP. Read-only services.

Messages are read in keyset batches by `seq` (never a whole conversation at once) and
written out as they arrive, so memory stays flat however long a conversation is. The
JSON layout is documented in docs/export-format.md.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.assistant.ledger import get_owned_image
from app.conversations.models import ChatMessage, ChatSession
from app.core.config import Settings
from app.core.errors import NotFoundError
from app.core.tenancy import owned
from app.core.validation import format_utc
from app.encryption.crypto import Keyring, keyring_of
from app.encryption.sealed import open_column
from app.exports.drafts import collect_drafts
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

EXPORT_FORMAT_VERSION = 1
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


def _dumps(value: Any) -> str:
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
        "role": row.role,
        "content": row.content,
        "imageUrl": row.image_url,
        "createdAt": iso(row.created_at),
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
    }


async def conversation_json_chunks(
    *, session: AsyncSession, user_id: uuid.UUID, row: Any, counter: list[int] | None = None
) -> AsyncIterator[str]:
    """One conversation object, as text pieces: the head, each message, then the drafts."""
    head = _dumps(conversation_head(row))
    yield head[:-1] + ',"messages":['
    first = True
    async for batch in iter_messages(session=session, user_id=user_id, session_id=row.id):
        parts = [_dumps(message_json(m)) for m in batch]
        if counter is not None:
            counter[0] += len(parts)
        yield ("" if first else ",") + ",".join(parts)
        first = False
    drafts = await collect_drafts(session, user_id, row.id)
    yield '],"drafts":' + _dumps(drafts) + "}"


def document_head(kind: str, now: datetime) -> dict[str, Any]:
    return {"format": kind, "version": EXPORT_FORMAT_VERSION, "exportedAt": iso(now)}


async def conversation_document_chunks(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, now: datetime
) -> AsyncIterator[bytes]:
    """The per-conversation export file, `chatkeep.conversation` version 1, in pieces."""
    row = await load_owned(session=session, user_id=user_id, session_id=session_id)
    head = _dumps(document_head(CONVERSATION_FORMAT, now))
    yield (head[:-1] + ',"conversation":').encode()
    async for piece in conversation_json_chunks(session=session, user_id=user_id, row=row):
        yield piece.encode()
    yield b"}"


# ------------------------------------------------------------------------------- PDF

_IMAGE_URL = re.compile(
    r"/api/images/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_IMAGE_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


def stored_image_id(image_url: str | None) -> uuid.UUID | None:
    """The stored image a message's `imageUrl` names (`/api/images/<uuid>`), if any."""
    match = _IMAGE_URL.fullmatch(image_url or "")
    return uuid.UUID(match.group(1)) if match else None


class MessageImages:
    """The exporting user's stored images as files, for the PDF renderer.

    An async context manager: the files live in a temporary directory of their own,
    removed on exit. Each image is read once, through the owner-filtered ledger lookup,
    so another user's image id resolves to nothing, exactly like a missing one.
    """

    def __init__(self, *, session: AsyncSession, user_id: uuid.UUID) -> None:
        self.session = session
        self.user_id = user_id
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._paths: dict[uuid.UUID, Path | None] = {}

    async def __aenter__(self) -> MessageImages:
        self._dir = tempfile.TemporaryDirectory(prefix="chatkeep-pdf-images-")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def path_for(self, image_url: str | None) -> Path | None:
        """A file holding the message's image, or None (no image, not the user's, gone)."""
        image_id = stored_image_id(image_url)
        if image_id is None:
            return None
        if image_id in self._paths:
            return self._paths[image_id]
        if self._dir is None:
            raise RuntimeError("MessageImages is used outside its `async with` block")
        try:
            image = await get_owned_image(
                session=self.session, user_id=self.user_id, image_id=str(image_id)
            )
        except NotFoundError:
            self._paths[image_id] = None
            return None
        path = Path(self._dir.name) / f"{image_id}{_IMAGE_SUFFIXES.get(image.content_type, '')}"
        # Only this call holds the row: the session's identity map keeps unchanged rows
        # weakly, so the bytes are freed once they are on disk.
        await anyio.to_thread.run_sync(path.write_bytes, image.data)
        self._paths[image_id] = path
        return path


def _pdf_conversation(row: Any) -> Any:
    from app.exports.pdf import PdfConversation

    return PdfConversation(
        title=row.title,
        session_id=row.id,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        archived_at=row.archived_at,
        message_count=row.message_count,
    )


def pdf_budget(settings: Settings) -> PdfBudget:
    from app.exports.pdf import PdfBudget

    return PdfBudget(max_pages=settings.pdf_max_pages, max_seconds=settings.pdf_time_budget_seconds)


async def render_row_pdf(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    row: Any,
    out: BinaryIO,
    budget: PdfBudget | None = None,
) -> bool:
    """Render in a worker thread, off the event loop; the thread pulls message batches
    from the loop as the renderer consumes them, so the messages are never all loaded at
    once. Returns whether the PDF was cut short by its budget."""
    from app.exports.pdf import PdfMessage, render_conversation_pdf

    async with MessageImages(session=session, user_id=user_id) as images:

        async def fetch(after_seq: int) -> list[tuple[Any, Path | None]]:
            rows = await message_batch(
                session=session,
                user_id=user_id,
                session_id=row.id,
                after_seq=after_seq,
                limit=MESSAGE_BATCH,
            )
            return [(m, await images.path_for(m.image_url)) for m in rows]

        def messages() -> Iterator[PdfMessage]:
            after = 0
            while True:
                batch = anyio.from_thread.run(fetch, after)
                for m, image_path in batch:
                    yield PdfMessage(
                        seq=m.seq,
                        role=m.role,
                        content=m.content,
                        created_at=m.created_at,
                        image_path=image_path,
                    )
                if len(batch) < MESSAGE_BATCH:
                    return
                after = batch[-1][0].seq

        return await anyio.to_thread.run_sync(
            partial(render_conversation_pdf, budget=budget),
            _pdf_conversation(row),
            messages(),
            out,
        )


async def render_session_pdf(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    out: BinaryIO,
    budget: PdfBudget | None = None,
) -> bool:
    """Write the user's conversation as PDF to `out`. NotFoundError if it is not theirs."""
    row = await load_owned(session=session, user_id=user_id, session_id=session_id)
    return await render_row_pdf(session=session, user_id=user_id, row=row, out=out, budget=budget)


PDF_SPOOL_BYTES = 8 * 1024 * 1024
FILE_CHUNK_BYTES = 64 * 1024


@dataclass
class SpooledFile:
    """A rendered file, in memory up to PDF_SPOOL_BYTES and on disk beyond; read it once
    with `chunks()`, which closes it."""

    handle: IO[bytes]
    size: int

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while chunk := self.handle.read(FILE_CHUNK_BYTES):
                yield chunk
        finally:
            self.handle.close()


async def session_pdf_file(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    budget: PdfBudget | None = None,
) -> SpooledFile:
    """The user's conversation as a finished PDF, its size known before the first byte is
    sent. NotFoundError if it is not theirs."""
    spool = tempfile.SpooledTemporaryFile(max_size=PDF_SPOOL_BYTES)  # noqa: SIM115
    try:
        await render_session_pdf(
            session=session,
            user_id=user_id,
            session_id=session_id,
            out=cast(BinaryIO, spool),
            budget=budget,
        )
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return SpooledFile(handle=cast(IO[bytes], spool), size=size)


async def conversation_json_stream(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    session_id: str,
    now: datetime,
) -> AsyncIterator[bytes]:
    """The per-conversation JSON file as byte chunks, read in a session of its own."""
    async with sessionmaker() as db:
        try:
            await read_only_snapshot(db)
            async for chunk in conversation_document_chunks(
                session=db, user_id=user_id, session_id=session_id, now=now
            ):
                yield chunk
        finally:
            await db.rollback()
