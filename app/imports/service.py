"""Writing an import: checked conversations become archived sessions of the importing user.

The file is read in a worker thread, a batch of conversations at a time (about
IMPORT_BATCH_BYTES of text), and each batch is written before the next is read, so memory
holds one batch whatever the file's size. Every INSERT carries at most `INSERT_BATCH` rows
and about IMPORT_BATCH_BYTES of text, so a conversation of long messages never makes one
statement outlive the statement timeout. All batches go into the request's one
transaction: a file refused half-way (a budget, hostile text, a damaged archive) leaves
nothing behind.

A message keeps its `imageUrl` only when it names one of the importing user's own stored
images by this server's path (`/api/images/<id>`). Every imported conversation gets a new
id, status `archived` and `imported_from`. A `chat_import` row keeps (source id, content
hash) per user, so importing the same file again adds nothing; a Chatkeep conversation
whose id is one of the user's own sessions, which still starts with the same messages, is
skipped as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.ids import new_session_id
from app.conversations.models import SessionStatus
from app.conversations.service import DEFAULT_TITLE
from app.core.db import commit
from app.drafts.schemas import image_url
from app.exports.service import stored_image_id
from app.imports.admission import ImportAdmission
from app.imports.checks import ImportedConversation, ImportFailure, canonical, content_hash
from app.imports.limits import ImportLimits
from app.imports.reading import Checked, ExportReader
from app.imports.repository import STATEMENT_ROWS, ImportRepository

INSERT_BATCH = STATEMENT_ROWS
# What a message row costs in an INSERT beyond its text (ids, times, role).
ROW_OVERHEAD_BYTES = 256


@dataclass(frozen=True)
class ImportOutcome:
    imported: int
    skipped: int
    sessions: list[str]
    failed: list[ImportFailure]


@dataclass
class _Progress:
    sessions: list[str] = field(default_factory=list)
    skipped: int = 0
    seen: set[tuple[str, str]] = field(default_factory=set)


def is_large(reader: ExportReader, limits: ImportLimits) -> bool:
    return reader.is_zip() or reader.size > limits.large_bytes


async def import_file(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    upload: IO[bytes],
    limits: ImportLimits,
    now: datetime,
    admission: ImportAdmission | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Reads, checks and writes the uploaded export. Flushes; the caller commits.
    `on_batch(n)` hears how many conversations are written (not yet committed) so far."""
    reader = ExportReader(upload, limits)
    async with AsyncExitStack() as stack:
        stack.callback(reader.close)
        if session.in_transaction():
            # Nothing written yet (the sign-in lookup only): no connection is held while
            # this import waits in line or its first batch is parsed.
            await commit(session)
        if admission is not None and is_large(reader, limits):
            await stack.enter_async_context(
                admission.slot(
                    queue_length=limits.queue_length, wait_seconds=limits.queue_wait_seconds
                )
            )
        batches = reader.batches()
        progress = _Progress()
        locked = False
        while (batch := await anyio.to_thread.run_sync(next, batches, None)) is not None:
            if not locked:
                # One import per user at a time, so two uploads of one file cannot both
                # add it.
                await ImportRepository(session, user_id).lock()
                locked = True
            await _write_batch(
                session=session,
                user_id=user_id,
                batch=batch,
                now=now,
                limits=limits,
                progress=progress,
            )
            if on_batch is not None:
                on_batch(len(progress.sessions) + progress.skipped)
        await session.flush()
    return ImportOutcome(
        imported=len(progress.sessions),
        skipped=progress.skipped,
        sessions=progress.sessions,
        failed=list(reader.failed),
    )


async def _still_here(
    *, repo: ImportRepository, conversations: list[ImportedConversation]
) -> set[tuple[str, str]]:
    """(source id, content hash) of the conversations this account already holds: the file
    names one of the user's own sessions by its id, and that session starts with exactly
    the file's messages (an export of this account brought back, perhaps continued since)."""
    by_id: dict[str, list[ImportedConversation]] = {}
    for conv in conversations:
        by_id.setdefault(conv.id, []).append(conv)
    wanted = {sid: max(len(c.messages) for c in convs) for sid, convs in by_id.items()}
    found: set[tuple[str, str]] = set()
    for sid, held in (await repo.held_starts(wanted)).items():
        for conv in by_id[sid]:
            mine = [(msg.seq, msg.role, msg.content) for msg in conv.messages]
            if held[: len(mine)] == mine:
                found.add((conv.id, content_hash(conv)))
    return found


async def _own_image_urls(
    *, repo: ImportRepository, conversations: list[ImportedConversation]
) -> set[str]:
    """The `imageUrl`s among the conversations' messages that name the user's own images."""
    ids = list(
        {i for conv in conversations for m in conv.messages if (i := stored_image_id(m.image_url))}
    )
    return {url for i in await repo.own_image_ids(ids) if (url := image_url(i)) is not None}


async def _write_batch(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    batch: list[Checked],
    now: datetime,
    limits: ImportLimits,
    progress: _Progress,
) -> None:
    """Adds a batch of checked conversations, skipping ones this user already has:
    imported before (same source id and content), or still here (an export of this
    account), or earlier in the same file."""
    repo = ImportRepository(session, user_id)
    conversations = [item.conversation for item in batch]
    known = await repo.imported_before(list({conv.id for conv in conversations}))
    known |= await _still_here(repo=repo, conversations=conversations)

    created: list[tuple[str, ImportedConversation]] = []
    session_rows: list[dict[str, Any]] = []
    import_rows: list[dict[str, Any]] = []
    # With ENCRYPTION_KEYS set, the repository seals the rows and indexes them.
    for item in batch:
        conv, digest = item.conversation, item.digest
        if (conv.id, digest) in known or (conv.id, digest) in progress.seen:
            progress.skipped += 1
            continue
        progress.seen.add((conv.id, digest))
        new_id = new_session_id(now)
        created.append((new_id, conv))
        title = " ".join(conv.title.split()) or DEFAULT_TITLE
        session_rows.append(
            {
                "id": new_id,
                "title": title,
                "status": SessionStatus.ARCHIVED.value,
                "created_at": conv.created_at,
                "last_activity_at": conv.last_activity_at,
                "archived_at": conv.archived_at or now,
                "message_count": len(conv.messages),
                "head_seq": conv.head_seq,
                "pinned": conv.pinned,
                "tags": conv.tags,
                "imported_from": conv.imported_from,
            }
        )
        import_rows.append(
            {
                "source_id": conv.id,
                "content_hash": digest,
                "session_id": new_id,
                "imported_at": now,
            }
        )
    await repo.add_sessions(session_rows)
    own_images = await _own_image_urls(repo=repo, conversations=[conv for _, conv in created])

    message_rows: list[dict[str, Any]] = []
    pending_bytes = 0

    async def flush_messages() -> None:
        nonlocal pending_bytes
        await repo.add_messages(message_rows)
        message_rows.clear()
        pending_bytes = 0

    for new_id, conv in created:
        depths: dict[int | None, int] = {None: 0}
        for m in conv.messages:
            depths[m.seq] = depths[m.parent_seq] + 1
            size = len(m.content) + ROW_OVERHEAD_BYTES
            if m.metadata:
                size += len(canonical(m.metadata))
            if message_rows and (
                len(message_rows) >= INSERT_BATCH or pending_bytes + size > limits.batch_bytes
            ):
                await flush_messages()
            message_rows.append(
                {
                    "session_id": new_id,
                    "seq": m.seq,
                    "parent_seq": m.parent_seq,
                    "depth": depths[m.seq],
                    "role": m.role,
                    "content": m.content,
                    "image_url": m.image_url if m.image_url in own_images else None,
                    "metadata": m.metadata,
                    "created_at": m.created_at,
                }
            )
            pending_bytes += size
    await flush_messages()
    await repo.add_imports(import_rows)
    progress.sessions.extend(new_id for new_id, _ in created)
