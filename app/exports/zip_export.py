"""The all-conversations export: a ZIP written while it is sent.

Layout (docs/export-format.md):
  conversations.json                      chatkeep.export v1, every matching conversation
  conversations/<slug>-<date>-<id>.pdf    one PDF per conversation, with its images
  manifest.json                           counts, and size + SHA-256 of every other file

`zipfile` writes into a small sink that is drained after every piece, so the response
carries the archive as it is made and memory stays flat however many conversations there
are: JSON goes out message batch by message batch, each PDF is rendered to a spooled
temporary file (spilling to disk when large) and copied in 64 KiB pieces. The archive is
not seekable, so members use data descriptors (ZIP64 where sizes are not known ahead).

Everything is read in one REPEATABLE READ, READ ONLY transaction of its own (the request's
session is closed before the body streams): the JSON pass and the PDF pass see the very
same conversations, and every query filters on the caller's user id.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
import zipfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.exports import naming
from app.exports.service import (
    ARCHIVE_FORMAT,
    EXPORT_FORMAT_VERSION,
    conversation_json_chunks,
    document_head,
    iso,
    iter_sessions,
    read_only_snapshot,
    render_row_pdf,
)
from app.history.service import SessionFilter

if TYPE_CHECKING:
    from app.exports.pdf import PdfBudget

CHUNK_BYTES = 64 * 1024
PDF_SPOOL_BYTES = 8 * 1024 * 1024
CONVERSATIONS_FILE = "conversations.json"
MANIFEST_FILE = "manifest.json"
PDF_DIR = "conversations"
MANIFEST_FORMAT = "chatkeep.export.manifest"


class _Sink:
    """A write-only, unseekable file for ZipFile; `drain()` hands over what was written."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def pending(self) -> int:
        return len(self._buffer)

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


@dataclass
class _Member:
    """A member being written: counts and hashes the uncompressed bytes on the way in."""

    path: str
    writer: IO[bytes]
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def write(self, data: bytes) -> None:
        if data:
            self.writer.write(data)
            self.size += len(data)
            self.digest.update(data)

    def entry(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.digest.hexdigest()}


def _open_member(zf: zipfile.ZipFile, path: str, when: datetime, *, zip64: bool) -> _Member:
    info = zipfile.ZipInfo(path, date_time=when.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return _Member(path, zf.open(info, mode="w", force_zip64=zip64))


@dataclass
class ExportCounts:
    conversations: int = 0
    messages: int = 0


def zip_download_name(now: datetime) -> str:
    return f"chatkeep-export-{naming.day(now)}.zip"


async def _write_zip(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    flt: SessionFilter,
    now: datetime,
    extra_files: Mapping[str, bytes] | None = None,
    budget: PdfBudget | None = None,
) -> AsyncIterator[bytes]:
    sink = _Sink()
    zf = zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
    entries: list[dict[str, Any]] = []
    counts = ExportCounts()
    await read_only_snapshot(db)

    # Pass 1: conversations.json, streamed conversation by conversation.
    member = _open_member(zf, CONVERSATIONS_FILE, now, zip64=True)
    with member.writer:
        head = json.dumps(document_head(ARCHIVE_FORMAT, now), separators=(",", ":"))
        member.write((head[:-1] + ',"conversations":[').encode())
        message_counter = [0]
        async for row in iter_sessions(session=db, user_id=user_id, flt=flt):
            if counts.conversations:
                member.write(b",")
            counts.conversations += 1
            async for piece in conversation_json_chunks(
                session=db, user_id=user_id, row=row, counter=message_counter
            ):
                member.write(piece.encode())
                if sink.pending() >= CHUNK_BYTES:
                    yield sink.drain()
        member.write(b"]}")
        counts.messages = message_counter[0]
    entries.append(member.entry())
    yield sink.drain()

    # Pass 2: one PDF per conversation, same snapshot, same order.
    used: set[str] = set()
    async for row in iter_sessions(session=db, user_id=user_id, flt=flt):
        stem = f"{naming.slugify(row.title)}-{naming.day(row.created_at)}-{naming.short_id(row.id)}"
        path = f"{PDF_DIR}/{stem}.pdf"
        n = 2
        while path in used:
            path = f"{PDF_DIR}/{stem}-{n}.pdf"
            n += 1
        used.add(path)
        with tempfile.SpooledTemporaryFile(max_size=PDF_SPOOL_BYTES) as spool:
            await render_row_pdf(
                session=db, user_id=user_id, row=row, out=cast(BinaryIO, spool), budget=budget
            )
            spool.seek(0)
            member = _open_member(zf, path, now, zip64=False)
            with member.writer:
                while chunk := spool.read(CHUNK_BYTES):
                    member.write(chunk)
                    if sink.pending() >= CHUNK_BYTES:
                        yield sink.drain()
        entries.append(member.entry())
        yield sink.drain()

    for path, content in (extra_files or {}).items():
        member = _open_member(zf, path, now, zip64=False)
        with member.writer:
            member.write(content)
        entries.append(member.entry())
        yield sink.drain()

    manifest = {
        "format": MANIFEST_FORMAT,
        "version": EXPORT_FORMAT_VERSION,
        "exportedAt": iso(now),
        "filters": {
            "status": flt.status,
            "q": flt.q,
            "from": flt.date_from.isoformat() if flt.date_from else None,
            "to": flt.date_to.isoformat() if flt.date_to else None,
        },
        "counts": {
            "conversations": counts.conversations,
            "messages": counts.messages,
            "files": len(entries),
        },
        "files": entries,
    }
    info = zipfile.ZipInfo(MANIFEST_FILE, date_time=now.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, json.dumps(manifest, ensure_ascii=False, indent=2).encode())
    zf.close()
    yield sink.drain()


async def export_zip_stream(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    flt: SessionFilter,
    now: datetime,
    extra_files: Mapping[str, bytes] | None = None,
    pdf_budget: PdfBudget | None = None,
) -> AsyncIterator[bytes]:
    """The ZIP of the user's conversations matching `flt`, as byte chunks; `extra_files`
    (path -> bytes) are added before the manifest, which lists them too.

    Opens (and closes) its own database session, so it can outlive the request's.
    """
    async with sessionmaker() as db:
        try:
            async for chunk in _write_zip(
                db,
                user_id=user_id,
                flt=flt,
                now=now,
                extra_files=extra_files,
                budget=pdf_budget,
            ):
                if chunk:
                    yield chunk
        finally:
            await db.rollback()
