"""Downloads are produced first, then sent: no client ever holds the database.

A download (a conversation as JSON or PDF, the ZIP of everything, "my data") is made in
two steps:

1. **Read.** Each conversation is read in one short REPEATABLE READ, READ ONLY transaction
   of its own (a snapshot per conversation: its head, messages, drafts and images agree
   with each other) and written to local files: its JSON text, its messages for the PDF
   (one JSON line each) and its images. The list of conversations a ZIP holds is taken
   first, in a snapshot of its own; one deleted before it is read is left out. The
   connection goes back to the pool after each conversation.
2. **Build.** PDF layout and ZIP writing run in a worker thread, off the event loop, with
   no connection held, into a temporary file.

Only then is the file sent, its size known (`Content-Length`), with nothing of the
database held: a client that stops reading holds a file and one of its own download
slots, never a pooled connection or a transaction.

The files live under `DATA_DIR/spool` (on disk, not in memory, past a small in-memory
head) and are removed once the download ends; a finished download is an unlinked file,
so even a killed process leaves it behind only as long as the process lives.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations import tree
from app.core.errors import AppError, NotFoundError
from app.drafts import ledger
from app.drafts.ledger import get_owned_image
from app.exports.service import (
    CONVERSATION_FORMAT,
    IMAGE_SUFFIXES,
    conversation_head,
    conversation_summaries,
    document_head,
    dumps,
    iso,
    iter_messages,
    iter_sessions,
    load_owned,
    message_json,
    read_only_snapshot,
    stored_image_id,
)
from app.history.service import SessionFilter

if TYPE_CHECKING:
    from app.typesetting.pdf import PdfBudget, PdfConversation

CHUNK_BYTES = 64 * 1024
# A download up to this size stays in memory; past it, it is a file under the spool.
MEMORY_SPOOL_BYTES = 1024 * 1024
SPOOL_DIR_NAME = "spool"
WORKSPACE_PREFIX = "download-"
# A workspace this old belongs to a process that was killed mid-download.
STALE_WORKSPACE_SECONDS = 6 * 3600
DOWNLOAD_RETRY_AFTER_SECONDS = 10


def spool_dir(data_dir: Path) -> Path:
    """Where downloads are produced (created on first use)."""
    path = data_dir / SPOOL_DIR_NAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def purge_stale_workspaces(data_dir: Path, *, now: float | None = None) -> int:
    """Removes workspaces left by a killed process; returns how many."""
    root = data_dir / SPOOL_DIR_NAME
    if not root.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - STALE_WORKSPACE_SECONDS
    removed = 0
    for entry in root.glob(f"{WORKSPACE_PREFIX}*"):
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


# ------------------------------------------------------------------- download slots


class TooManyDownloadsError(AppError):
    status_code = 429
    code = "too_many_downloads"
    title = "Too many downloads at once"


class DownloadSlots:
    """How many downloads each user has in progress in this process (being produced or
    being sent), capped at `limit` (DOWNLOAD_MAX_PER_USER)."""

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self._held: dict[uuid.UUID, int] = defaultdict(int)
        self._lock = threading.Lock()

    def held(self, user_id: uuid.UUID) -> int:
        return self._held.get(user_id, 0)

    def take(self, user_id: uuid.UUID) -> DownloadSlot:
        with self._lock:
            if self._held[user_id] >= self.limit:
                raise TooManyDownloadsError(
                    f"You have {self.limit} downloads in progress, the most at once. Let one "
                    f"finish (or cancel it), then try again.",
                    headers={"Retry-After": str(DOWNLOAD_RETRY_AFTER_SECONDS)},
                    extra={"limit": self.limit, "retryAfter": DOWNLOAD_RETRY_AFTER_SECONDS},
                )
            self._held[user_id] += 1
        return DownloadSlot(self, user_id)

    def _give_back(self, user_id: uuid.UUID) -> None:
        with self._lock:
            self._held[user_id] -= 1
            if self._held[user_id] <= 0:
                del self._held[user_id]


class DownloadSlot:
    def __init__(self, slots: DownloadSlots, user_id: uuid.UUID) -> None:
        self._slots = slots
        self._user_id = user_id
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._give_back(self._user_id)


# --------------------------------------------------------------------------- the file


@dataclass
class Download:
    """A finished download: read it once with `chunks()`, then `close()` it."""

    handle: IO[bytes]
    size: int

    def chunks(self) -> Iterator[bytes]:
        self.handle.seek(0)
        while chunk := self.handle.read(CHUNK_BYTES):
            yield chunk

    def close(self) -> None:
        self.handle.close()


def _new_spool(directory: Path) -> IO[bytes]:
    return cast(
        IO[bytes],
        tempfile.SpooledTemporaryFile(max_size=MEMORY_SPOOL_BYTES, dir=str(directory)),
    )


def finished(handle: IO[bytes]) -> Download:
    size = handle.seek(0, 2)
    handle.seek(0)
    return Download(handle=handle, size=size)


# ------------------------------------------------------------------------- reading


@dataclass
class Captured:
    """One conversation as read in its snapshot: what its PDF needs, and where its
    messages are in the workspace's message file."""

    head: Any
    first_line: int = 0
    end_offset: int = 0
    messages: int = 0
    printed: int = 0  # messages of the active path: what the PDF prints


class Workspace:
    """The local files a download is made from; removed with `cleanup()`."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=directory))
        self.images_dir = self.path / "images"
        self.images_dir.mkdir()
        self._images: dict[uuid.UUID, str | None] = {}
        self.messages_path = self.path / "messages.jsonl"
        self.messages = self.messages_path.open("w+b")

    def cleanup(self) -> None:
        self.messages.close()
        shutil.rmtree(self.path, ignore_errors=True)

    async def image_file(
        self, *, session: AsyncSession, user_id: uuid.UUID, image_url: str | None
    ) -> str | None:
        """The file name (under images/) of the message's image, if it is the user's."""
        image_id = stored_image_id(image_url)
        if image_id is None:
            return None
        if image_id in self._images:
            return self._images[image_id]
        try:
            image = await get_owned_image(session=session, user_id=user_id, image_id=str(image_id))
        except NotFoundError:
            self._images[image_id] = None
            return None
        name = f"{image_id}{IMAGE_SUFFIXES.get(image.content_type, '')}"
        await anyio.to_thread.run_sync((self.images_dir / name).write_bytes, image.data)
        self._images[image_id] = name
        return name


async def read_conversation(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    session_id: str,
    json_out: IO[bytes] | None,
    workspace: Workspace | None,
) -> Captured:
    """One conversation in one short read-only snapshot: its JSON object to `json_out`,
    its messages (and images) to the workspace for the PDF. NotFoundError if it is not
    (or no longer) the user's."""
    async with sessionmaker() as db:
        try:
            await read_only_snapshot(db)
            row = await load_owned(session=db, user_id=user_id, session_id=session_id)
            captured = Captured(head=row)
            printed: set[int] = set()
            if workspace is not None:
                captured.first_line = workspace.messages.tell()
                # The PDF prints the active path (root to head); the JSON every branch.
                printed = set(
                    await tree.path_seqs(
                        session=db, user_id=user_id, session_id=row.id, head_seq=row.head_seq
                    )
                )
                captured.printed = len(printed)
            if json_out is not None:
                head = dumps(conversation_head(row))
                json_out.write((head[:-1] + ',"messages":[').encode())
            first = True
            async for batch in iter_messages(session=db, user_id=user_id, session_id=row.id):
                captured.messages += len(batch)
                if json_out is not None:
                    parts = ",".join(dumps(message_json(m)) for m in batch)
                    json_out.write((parts if first else "," + parts).encode())
                    first = False
                if workspace is not None:
                    for m in batch:
                        if m.seq not in printed:
                            continue
                        image = await workspace.image_file(
                            session=db, user_id=user_id, image_url=m.image_url
                        )
                        line = dumps(
                            {
                                "seq": m.seq,
                                "role": m.role,
                                "content": m.content,
                                "createdAt": iso(m.created_at),
                                "image": image,
                            }
                        )
                        workspace.messages.write(line.encode() + b"\n")
            if json_out is not None:
                drafts = await ledger.export_drafts(db, user_id, row.id)
                summaries = await conversation_summaries(
                    session=db, user_id=user_id, session_id=row.id
                )
                tail = '],"drafts":' + dumps(drafts) + ',"summaries":' + dumps(summaries) + "}"
                json_out.write(tail.encode())
            if workspace is not None:
                captured.end_offset = workspace.messages.tell()
            return captured
        finally:
            await db.rollback()


async def conversation_ids(
    *, sessionmaker: async_sessionmaker[AsyncSession], user_id: uuid.UUID, flt: SessionFilter
) -> list[str]:
    """The ids of the user's conversations matching `flt`, newest activity first, as
    one snapshot shows them."""
    async with sessionmaker() as db:
        try:
            await read_only_snapshot(db)
            return [row.id async for row in iter_sessions(session=db, user_id=user_id, flt=flt)]
        finally:
            await db.rollback()


# ----------------------------------------------------------------------------- PDF


def _pdf_conversation(captured: Captured) -> PdfConversation:
    from app.typesetting.pdf import PdfConversation

    row = captured.head
    return PdfConversation(
        title=row.title,
        session_id=row.id,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        archived_at=row.archived_at,
        message_count=captured.printed,
        other_versions=captured.messages - captured.printed,
    )


def render_pdf(
    workspace: Workspace, captured: Captured, out: BinaryIO, budget: PdfBudget | None
) -> bool:
    """Lays out one captured conversation (in a worker thread: no connection, no loop).
    Returns whether the PDF was cut short by its budget."""
    from app.typesetting.pdf import PdfMessage, render_conversation_pdf

    def messages() -> Iterator[PdfMessage]:
        with workspace.messages_path.open("rb") as lines:
            lines.seek(captured.first_line)
            while lines.tell() < captured.end_offset:
                item = json.loads(lines.readline())
                yield PdfMessage(
                    seq=item["seq"],
                    role=item["role"],
                    content=item["content"],
                    created_at=datetime.fromisoformat(item["createdAt"]),
                    image_path=workspace.images_dir / item["image"] if item["image"] else None,
                )

    workspace.messages.flush()
    return render_conversation_pdf(_pdf_conversation(captured), messages(), out, budget=budget)


# --------------------------------------------------------------------------- public


async def conversation_json(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    session_id: str,
    now: datetime,
    data_dir: Path,
) -> Download:
    """The per-conversation export file (`chatkeep.conversation` v1), finished."""
    out = _new_spool(spool_dir(data_dir))
    try:
        head = dumps(document_head(CONVERSATION_FORMAT, now))
        out.write((head[:-1] + ',"conversation":').encode())
        await read_conversation(
            sessionmaker=sessionmaker,
            user_id=user_id,
            session_id=session_id,
            json_out=out,
            workspace=None,
        )
        out.write(b"}")
        return finished(out)
    except BaseException:
        out.close()
        raise


async def conversation_pdf(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: uuid.UUID,
    session_id: str,
    data_dir: Path,
    budget: PdfBudget | None = None,
) -> Download:
    """The conversation as a finished PDF: read first, then laid out with no connection
    held. NotFoundError if it is not the user's."""
    directory = spool_dir(data_dir)
    workspace = Workspace(directory)
    out = _new_spool(directory)
    try:
        captured = await read_conversation(
            sessionmaker=sessionmaker,
            user_id=user_id,
            session_id=session_id,
            json_out=None,
            workspace=workspace,
        )
        await anyio.to_thread.run_sync(render_pdf, workspace, captured, cast(BinaryIO, out), budget)
        return finished(out)
    except BaseException:
        out.close()
        raise
    finally:
        workspace.cleanup()
