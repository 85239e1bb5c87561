"""The all-conversations export: a ZIP, produced before it is sent (app/exports/downloads.py).

Layout (docs/export-format.md):
  conversations.json                      chatkeep.export v1, every matching conversation
  conversations/<slug>-<date>-<id>.pdf    one PDF per conversation, with its images
  manifest.json                           counts, and size + SHA-256 of every other file

The conversations are read one snapshot each into a workspace (their JSON straight into
`conversations.json`, their messages and images for the PDFs); then a worker thread lays
out each PDF and writes the archive into a temporary file, with no connection held. Memory
stays flat however many conversations there are: everything passes through files in
64 KiB pieces, and each PDF is spooled to disk when large.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import NotFoundError
from app.exports import naming
from app.exports.downloads import (
    CHUNK_BYTES,
    MEMORY_SPOOL_BYTES,
    Captured,
    Download,
    Workspace,
    conversation_ids,
    finished,
    read_conversation,
    render_pdf,
    spool_dir,
)
from app.exports.service import ARCHIVE_FORMAT, EXPORT_FORMAT_VERSION, document_head, iso
from app.history.service import SessionFilter

if TYPE_CHECKING:
    from app.typesetting.pdf import PdfBudget

CONVERSATIONS_FILE = "conversations.json"
MANIFEST_FILE = "manifest.json"
PDF_DIR = "conversations"
MANIFEST_FORMAT = "chatkeep.export.manifest"


def zip_download_name(now: datetime) -> str:
    return f"chatkeep-export-{naming.day(now)}.zip"


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


def _zip_info(path: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(path, date_time=when.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _copy_member(zf: zipfile.ZipFile, path: str, source: IO[bytes], when: datetime) -> _Member:
    member = _Member(path, zf.open(_zip_info(path, when), mode="w", force_zip64=True))
    with member.writer:
        source.seek(0)
        while chunk := source.read(CHUNK_BYTES):
            member.write(chunk)
    return member


def _pdf_path(row: Any, used: set[str]) -> str:
    stem = f"{naming.slugify(row.title)}-{naming.day(row.created_at)}-{naming.short_id(row.id)}"
    path = f"{PDF_DIR}/{stem}.pdf"
    n = 2
    while path in used:
        path = f"{PDF_DIR}/{stem}-{n}.pdf"
        n += 1
    used.add(path)
    return path


@dataclass
class _ZipPlan:
    workspace: Workspace
    conversations_json: IO[bytes]
    captured: list[Captured]
    flt: SessionFilter
    now: datetime
    extra_files: Mapping[str, bytes]
    budget: PdfBudget | None
    # Called with (steps done, steps in all): a step is a conversation read, or laid out.
    progress: Callable[[int, int], None] | None = None


def _build_zip(plan: _ZipPlan, out: IO[bytes]) -> None:
    """Writes the archive (worker thread: PDF layout and deflate, no connection held)."""
    now = plan.now
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        entries.append(_copy_member(zf, CONVERSATIONS_FILE, plan.conversations_json, now).entry())
        used: set[str] = set()
        read = len(plan.captured)
        for laid_out, captured in enumerate(plan.captured):
            if plan.progress is not None:
                plan.progress(read + laid_out, 2 * read)
            path = _pdf_path(captured.head, used)
            with tempfile.SpooledTemporaryFile(
                max_size=MEMORY_SPOOL_BYTES, dir=str(plan.workspace.path)
            ) as pdf:
                render_pdf(plan.workspace, captured, cast(BinaryIO, pdf), plan.budget)
                entries.append(_copy_member(zf, path, cast(IO[bytes], pdf), now).entry())
        for path, content in plan.extra_files.items():
            member = _Member(path, zf.open(_zip_info(path, now), mode="w"))
            with member.writer:
                member.write(content)
            entries.append(member.entry())
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": EXPORT_FORMAT_VERSION,
            "exportedAt": iso(now),
            "filters": {
                "status": plan.flt.status,
                "q": plan.flt.q,
                "from": plan.flt.date_from.isoformat() if plan.flt.date_from else None,
                "to": plan.flt.date_to.isoformat() if plan.flt.date_to else None,
            },
            "counts": {
                "conversations": len(plan.captured),
                "messages": sum(c.messages for c in plan.captured),
                "files": len(entries),
            },
            "files": entries,
        }
        zf.writestr(
            _zip_info(MANIFEST_FILE, now),
            json.dumps(manifest, ensure_ascii=False, indent=2).encode(),
        )


async def archive(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    flt: SessionFilter,
    now: datetime,
    data_dir: Path,
    extra_files: Mapping[str, bytes] | None = None,
    budget: PdfBudget | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Download:
    """The ZIP of the user's conversations matching `flt` (docs/export-format.md), finished;
    `extra_files` (path -> bytes) go in before the manifest, which lists them too.
    `progress(done, total)` hears of each step (from the event loop and from the worker
    thread that writes the archive): each conversation read, then each laid out."""
    directory = spool_dir(data_dir)
    workspace = Workspace(directory)
    out: IO[bytes] = tempfile.TemporaryFile(dir=str(directory))  # noqa: SIM115
    try:
        conversations_json = (workspace.path / CONVERSATIONS_FILE).open("w+b")
        with conversations_json:
            head = json.dumps(document_head(ARCHIVE_FORMAT, now), separators=(",", ":"))
            conversations_json.write((head[:-1] + ',"conversations":[').encode())
            captured: list[Captured] = []
            ids = await conversation_ids(sessionmaker=sessionmaker, user_id=user_id, flt=flt)
            for position, session_id in enumerate(ids):
                if progress is not None:
                    progress(position, 2 * len(ids))
                separator_at = conversations_json.tell()
                if captured:
                    conversations_json.write(b",")
                try:
                    one = await read_conversation(
                        sessionmaker=sessionmaker,
                        user_id=user_id,
                        session_id=session_id,
                        json_out=conversations_json,
                        workspace=workspace,
                    )
                except NotFoundError:
                    # Deleted since the list was taken: left out, as if it were never listed.
                    conversations_json.seek(separator_at)
                    conversations_json.truncate()
                    continue
                captured.append(one)
            conversations_json.write(b"]}")
            conversations_json.flush()
            plan = _ZipPlan(
                workspace=workspace,
                conversations_json=conversations_json,
                captured=captured,
                flt=flt,
                now=now,
                extra_files=extra_files or {},
                budget=budget,
                progress=progress,
            )
            await anyio.to_thread.run_sync(partial(_build_zip, plan, out))
        return finished(out)
    except BaseException:
        out.close()
        raise
    finally:
        workspace.cleanup()
