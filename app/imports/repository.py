"""The SQL of an import: what the importing user already holds, and the rows it adds.

`ImportRepository(session, owner_id)` is built for the importing user: every read names
`user_id = :owner`, every row it writes carries that owner, and rows go in sealed (with
their blind-index rows) when encryption is on; what it reads back comes opened.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations.models import TITLE_SEQ, ChatMessage, ChatSession
from app.conversations.repository import upsert_search_tokens
from app.core.tenancy import owned
from app.drafts.models import StoredImage
from app.encryption.blind_index import token_row
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column, seal_row
from app.exports.models import ChatImport

# At most this many rows (or ids) in one statement.
STATEMENT_ROWS = 1000

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]
_imports = ChatImport.__table__  # type: ignore[attr-defined]


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + STATEMENT_ROWS] for i in range(0, len(items), STATEMENT_ROWS)]


class ImportRepository:
    """The importing user's side of an import: every statement is scoped to `owner_id`."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id
        self.keyring = keyring_of(session)

    async def lock(self) -> None:
        """One import per user at a time (until the transaction ends), so two uploads of
        one file cannot both add it."""
        await self.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"chatkeep-import:{self.owner_id}"},
        )

    async def imported_before(self, source_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(source id, content hash) of earlier imports among `source_ids`."""
        known: set[tuple[str, str]] = set()
        for chunk in _chunks(list(source_ids)):
            rows = await self.session.execute(
                owned(_imports, self.owner_id, _imports.c.source_id, _imports.c.content_hash).where(
                    _imports.c.source_id.in_(list(chunk))
                )
            )
            known.update((r.source_id, r.content_hash) for r in rows)
        return known

    async def held_starts(self, wanted: dict[str, int]) -> dict[str, list[tuple[int, str, str]]]:
        """For each session id in `wanted` that is one of the owner's (not temporary), its first `n`
        messages as (seq, role, content), content opened."""
        s, m = _sessions.c, _messages.c
        stored: dict[str, list[tuple[int, str, str]]] = {}
        for chunk in _chunks(list(wanted)):
            held = (
                await self.session.execute(
                    # A temporary conversation holds nothing for an import to skip.
                    owned(_sessions, self.owner_id, s.id).where(
                        s.id.in_(list(chunk)), sa.not_(s.temporary)
                    )
                )
            ).scalars()
            pairs = [(sid, wanted[sid]) for sid in held]
            if not pairs:
                continue
            upto = sa.values(
                sa.column("sid", sa.String), sa.column("n", sa.Integer), name="wanted"
            ).data(pairs)
            rows = await self.session.execute(
                owned(
                    _messages,
                    self.owner_id,
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
            for row in rows:
                content = open_column(
                    self.keyring,
                    ChatMessage,
                    "content",
                    plain=row.content,
                    sealed=row.content_sealed,
                    key_id=row.key_id,
                    user_id=self.owner_id,
                    row=(row.session_id, row.seq),
                )
                stored.setdefault(row.session_id, []).append((row.seq, row.role, content))
        return stored

    async def own_image_ids(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `ids` that are the owner's stored images."""
        image = col(StoredImage.id)
        found: set[uuid.UUID] = set()
        for chunk in _chunks(list(ids)):
            rows = await self.session.execute(
                owned(StoredImage, self.owner_id, image).where(image.in_(list(chunk)))
            )
            found.update(i for (i,) in rows)
        return found

    def _owned_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "user_id": self.owner_id}

    def _tokens(self, session_id: str, seq: int, text: str) -> dict[str, Any]:
        assert self.keyring is not None
        return token_row(
            self.keyring, user_id=self.owner_id, session_id=session_id, seq=seq, text=text
        )

    async def add_sessions(self, rows: list[dict[str, Any]]) -> None:
        """INSERTs the sessions (the owner's; sealed and their titles indexed when
        encryption is on)."""
        for chunk in _chunks(rows):
            await self.session.execute(
                sa.insert(_sessions),
                [seal_row(self.keyring, ChatSession, self._owned_row(r)) for r in chunk],
            )
            if self.keyring is not None:
                await self.session.execute(
                    upsert_search_tokens(
                        [self._tokens(r["id"], TITLE_SEQ, r["title"]) for r in chunk]
                    )
                )

    async def add_messages(self, rows: list[dict[str, Any]]) -> None:
        """INSERTs one batch of messages (the owner's; sealed and indexed when encryption
        is on). The caller bounds the batch."""
        if not rows:
            return
        await self.session.execute(
            sa.insert(_messages),
            [seal_row(self.keyring, ChatMessage, self._owned_row(r)) for r in rows],
        )
        if self.keyring is not None:
            await self.session.execute(
                upsert_search_tokens(
                    [self._tokens(r["session_id"], r["seq"], r["content"]) for r in rows]
                )
            )

    async def add_imports(self, rows: list[dict[str, Any]]) -> None:
        """INSERTs the `chat_import` records (source id, content hash, new session)."""
        for chunk in _chunks(rows):
            await self.session.execute(sa.insert(_imports), [self._owned_row(r) for r in chunk])
