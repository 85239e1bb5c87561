"""The SQL of exports: one owner's conversations and messages, read in keyset batches.

`ExportRepository(session, owner_id)` is built for one owner: each statement names
`user_id = :owner`, and each title and message comes back opened (an export is the owner's
plaintext). The filters and order are history's (`app.history.repository`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations.models import ChatMessage, ChatSession, PathSummary
from app.core.tenancy import owned
from app.encryption.crypto import Keyring, keyring_of
from app.encryption.sealed import open_column
from app.history.repository import (
    Position,
    SessionFilter,
    after_cursor,
    choose_search_plan,
    filtered_sessions,
    history_order,
    session_title,
)

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]
# Everything but the search vector.
_session_columns = [c for c in _sessions.c if c.name != "title_tsv"]


def _opened_session(keyring: Keyring | None, row: sa.Row[Any]) -> Any:
    """A session row with its title in plaintext (exports are the owner's plaintext)."""
    if row.key_id is None:
        return row
    return SimpleNamespace(**{**row._asdict(), "title": session_title(keyring, row.user_id, row)})


class ExportRepository:
    """One owner's conversations as an export reads them."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def conversation(self, session_id: str) -> Any | None:
        """The conversation's row (every column but the search vector), title opened."""
        row = (
            await self.session.execute(
                owned(_sessions, self.owner_id, *_session_columns).where(
                    _sessions.c.id == session_id
                )
            )
        ).first()
        return None if row is None else _opened_session(keyring_of(self.session), row)

    async def summaries(self, session_id: str) -> Sequence[PathSummary]:
        """The summaries the model wrote of the conversation's long paths, oldest first,
        opened (one row per message a summary ends at: a handful per conversation)."""
        rows = await self.session.execute(
            owned(PathSummary, self.owner_id)
            .where(col(PathSummary.session_id) == session_id)
            .order_by(col(PathSummary.through_seq))
        )
        return rows.scalars().all()

    async def message_batch(self, session_id: str, *, after_seq: int, limit: int) -> Sequence[Any]:
        """Up to `limit` messages after `after_seq`, in seq order, content opened."""
        m = _messages.c
        stmt = (
            owned(
                _messages,
                self.owner_id,
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
        rows = (await self.session.execute(stmt)).all()
        keyring = keyring_of(self.session)
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
                        user_id=self.owner_id,
                        row=(session_id, r.seq),
                    ),
                }
            )
            for r in rows
        ]

    async def sessions(self, flt: SessionFilter, *, batch: int) -> AsyncIterator[Any]:
        """The owner's sessions matching the filter, history order, in keyset batches."""
        plan = await choose_search_plan(session=self.session, user_id=self.owner_id, q=flt.q)
        keyring = keyring_of(self.session)
        position: Position | None = None
        while True:
            stmt = filtered_sessions(
                *_session_columns, user_id=self.owner_id, flt=flt, plan=plan, keyring=keyring
            )
            if position is not None:
                stmt = stmt.where(after_cursor(*position))
            rows = (await self.session.execute(stmt.order_by(*history_order()).limit(batch))).all()
            for row in rows:
                yield _opened_session(keyring, row)
            if len(rows) < batch:
                return
            position = (rows[-1].pinned, rows[-1].last_activity_at, rows[-1].id)
