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
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations import blind_index
from app.conversations.ids import new_session_id
from app.conversations.models import TITLE_SEQ, ChatMessage, ChatSession, SessionStatus
from app.conversations.service import DEFAULT_TITLE
from app.core.db import commit
from app.core.tenancy import owned
from app.drafts.models import StoredImage
from app.drafts.schemas import image_url
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column, seal_row
from app.exports.models import ChatImport
from app.exports.service import stored_image_id
from app.imports.admission import ImportAdmission
from app.imports.checks import ImportedConversation, ImportFailure, canonical, content_hash
from app.imports.limits import ImportLimits
from app.imports.reading import Checked, ExportReader

INSERT_BATCH = 1000
# What a message row costs in an INSERT beyond its text (ids, times, role).
ROW_OVERHEAD_BYTES = 256

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]
_imports = ChatImport.__table__  # type: ignore[attr-defined]


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
                await session.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                    {"key": f"chatkeep-import:{user_id}"},
                )
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
    *, session: AsyncSession, user_id: uuid.UUID, conversations: list[ImportedConversation]
) -> set[tuple[str, str]]:
    """(source id, content hash) of the conversations this account already holds: the file
    names one of the user's own sessions by its id, and that session starts with exactly
    the file's messages (an export of this account brought back, perhaps continued since)."""
    by_id: dict[str, list[ImportedConversation]] = {}
    for conv in conversations:
        by_id.setdefault(conv.id, []).append(conv)
    ids = list(by_id)
    s, m = _sessions.c, _messages.c
    found: set[tuple[str, str]] = set()
    for start in range(0, len(ids), INSERT_BATCH):
        batch = ids[start : start + INSERT_BATCH]
        held_ids = (
            await session.execute(owned(_sessions, user_id, s.id).where(s.id.in_(batch)))
        ).scalars()
        wanted = [(sid, max(len(c.messages) for c in by_id[sid])) for sid in held_ids]
        if not wanted:
            continue
        upto = sa.values(
            sa.column("sid", sa.String), sa.column("n", sa.Integer), name="wanted"
        ).data(wanted)
        rows = await session.execute(
            owned(
                _messages,
                user_id,
                m.session_id,
                m.seq,
                m.role,
                m.content,
                m.content_sealed,
                m.key_id,
            )
            .join(upto, sa.and_(m.session_id == upto.c.sid, m.seq <= upto.c.n))
            .order_by(m.session_id, m.seq)
        )
        keyring = keyring_of(session)
        stored: dict[str, list[tuple[int, str, str]]] = {}
        for row in rows:
            content = open_column(
                keyring,
                ChatMessage,
                "content",
                plain=row.content,
                sealed=row.content_sealed,
                key_id=row.key_id,
                user_id=user_id,
                row=(row.session_id, row.seq),
            )
            stored.setdefault(row.session_id, []).append((row.seq, row.role, content))
        for sid, held in stored.items():
            for conv in by_id[sid]:
                mine = [(msg.seq, msg.role, msg.content) for msg in conv.messages]
                if held[: len(mine)] == mine:
                    found.add((conv.id, content_hash(conv)))
    return found


async def _own_image_urls(
    *, session: AsyncSession, user_id: uuid.UUID, conversations: list[ImportedConversation]
) -> set[str]:
    """The `imageUrl`s among the conversations' messages that name the user's own images."""
    ids = list(
        {i for conv in conversations for m in conv.messages if (i := stored_image_id(m.image_url))}
    )
    image = col(StoredImage.id)
    found: set[str] = set()
    for start in range(0, len(ids), INSERT_BATCH):
        rows = await session.execute(
            owned(StoredImage, user_id, image).where(image.in_(ids[start : start + INSERT_BATCH]))
        )
        found.update(url for (i,) in rows if (url := image_url(i)) is not None)
    return found


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
    conversations = [item.conversation for item in batch]
    known: set[tuple[str, str]] = set()
    source_ids = list({conv.id for conv in conversations})
    for start in range(0, len(source_ids), INSERT_BATCH):
        rows = await session.execute(
            owned(_imports, user_id, _imports.c.source_id, _imports.c.content_hash).where(
                _imports.c.source_id.in_(source_ids[start : start + INSERT_BATCH])
            )
        )
        known.update((r.source_id, r.content_hash) for r in rows)
    known |= await _still_here(session=session, user_id=user_id, conversations=conversations)

    created: list[tuple[str, ImportedConversation]] = []
    session_rows: list[dict[str, Any]] = []
    import_rows: list[dict[str, Any]] = []
    # With ENCRYPTION_KEYS set, rows go in sealed, each with its blind-index row.
    keyring = keyring_of(session)
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
            seal_row(
                keyring,
                ChatSession,
                {
                    "id": new_id,
                    "user_id": user_id,
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
                },
            )
        )
        import_rows.append(
            {
                "user_id": user_id,
                "source_id": conv.id,
                "content_hash": digest,
                "session_id": new_id,
                "imported_at": now,
            }
        )
    for start in range(0, len(session_rows), INSERT_BATCH):
        await session.execute(sa.insert(_sessions), session_rows[start : start + INSERT_BATCH])
    own_images = await _own_image_urls(
        session=session, user_id=user_id, conversations=[conv for _, conv in created]
    )

    message_rows: list[dict[str, Any]] = []
    token_rows: list[dict[str, Any]] = []
    pending_bytes = 0

    def index(session_id: str, seq: int, text: str) -> None:
        if keyring is not None:
            token_rows.append(
                blind_index.token_row(
                    keyring, user_id=user_id, session_id=session_id, seq=seq, text=text
                )
            )

    async def flush_messages() -> None:
        nonlocal pending_bytes
        if message_rows:
            await session.execute(sa.insert(_messages), message_rows)
            message_rows.clear()
        if token_rows:
            await session.execute(blind_index.upsert(token_rows))
            token_rows.clear()
        pending_bytes = 0

    for new_id, conv in created:
        index(new_id, TITLE_SEQ, " ".join(conv.title.split()) or DEFAULT_TITLE)
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
                seal_row(
                    keyring,
                    ChatMessage,
                    {
                        "session_id": new_id,
                        "seq": m.seq,
                        "parent_seq": m.parent_seq,
                        "depth": depths[m.seq],
                        "user_id": user_id,
                        "role": m.role,
                        "content": m.content,
                        "image_url": m.image_url if m.image_url in own_images else None,
                        "metadata": m.metadata,
                        "created_at": m.created_at,
                    },
                )
            )
            pending_bytes += size
            index(new_id, m.seq, m.content)
    await flush_messages()
    for start in range(0, len(import_rows), INSERT_BATCH):
        await session.execute(sa.insert(_imports), import_rows[start : start + INSERT_BATCH])
    progress.sessions.extend(new_id for new_id, _ in created)
