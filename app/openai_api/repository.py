"""The SQL of `/v1`, all of it scoped to one owner: finding the stored path a client
resends (by path hash), a conversation's head, and writing the messages of a request that
Chatkeep has not stored yet (a new conversation's system message and history, or a new
branch's first messages) before the turn opens under them.

Content and titles go in sealed with ENCRYPTION_KEYS, with their blind-index rows, through
the same helpers as the turn's own statements (`app.conversations.repository`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import TITLE_SEQ, ChatMessage, ChatSession
from app.conversations.repository import sealed_content, sealed_title
from app.conversations.repository import upsert_search_tokens as upsert_tokens
from app.encryption.blind_index import token_row
from app.encryption.crypto import keyring_of
from app.events.bus import EventBus, user_event

_messages = ChatMessage.__table__  # type: ignore[attr-defined]
_sessions = ChatSession.__table__  # type: ignore[attr-defined]

# The deepest message of the owner's open conversations whose path hash is one of the
# request's (`:hashes`, in the order of the request's messages): the longest stored path
# the request begins with. Among equals, the most recently active conversation.
LONGEST_MATCH = sa.text(
    """
    SELECT m.session_id, m.seq, m.role,
           array_position(CAST(:hashes AS bytea[]), m.path_hash) AS position
    FROM chat_message m
    JOIN chat_session s ON s.id = m.session_id AND s.user_id = m.user_id
    WHERE m.user_id = :user_id AND m.path_hash = ANY(CAST(:hashes AS bytea[]))
      AND s.status = 'active' AND s.last_activity_at >= :active_since
    ORDER BY position DESC, s.last_activity_at DESC, m.session_id
    LIMIT 1
    """
)

# A conversation of the owner, with its head's path hash.
SESSION_HEAD = sa.text(
    """
    SELECT s.status, s.last_activity_at, s.head_seq, m.path_hash
    FROM chat_session s
    LEFT JOIN chat_message m ON m.session_id = s.id AND m.user_id = s.user_id
                            AND m.seq = s.head_seq
    WHERE s.id = :session_id AND s.user_id = :user_id
    """
)

# The owner's conversation, locked while messages are added, and the depth of the message
# they go under.
LOCK_FOR_APPEND = sa.text(
    """
    SELECT s.message_count,
           (SELECT depth FROM chat_message
            WHERE session_id = s.id AND user_id = s.user_id
              AND seq = CAST(:parent_seq AS integer)) AS parent_depth
    FROM chat_session s
    WHERE s.id = :session_id AND s.user_id = :user_id
    FOR UPDATE
    """
)


@dataclass(frozen=True)
class Match:
    session_id: str
    seq: int
    role: str
    position: int  # 1-based, among the request's hashed messages


@dataclass(frozen=True)
class Head:
    active_since: datetime
    status: str
    head_seq: int | None
    path_hash: bytes | None


@dataclass(frozen=True)
class NewMessage:
    """A message to store: `role` as Chatkeep stores it, `path_hash` null for a system
    message."""

    role: str
    content: str
    meta: dict[str, Any]
    path_hash: bytes | None


class OpenApiRepository:
    """The `/v1` statements of one owner."""

    def __init__(self, db: AsyncSession, user_id: uuid.UUID) -> None:
        self.db = db
        self.user_id = user_id

    async def longest_match(self, hashes: list[bytes], *, active_since: datetime) -> Match | None:
        row = (
            await self.db.execute(
                LONGEST_MATCH,
                {"hashes": hashes, "user_id": self.user_id, "active_since": active_since},
            )
        ).one_or_none()
        if row is None:
            return None
        return Match(session_id=row.session_id, seq=row.seq, role=row.role, position=row.position)

    async def session_head(self, session_id: str) -> Head | None:
        row = (
            await self.db.execute(SESSION_HEAD, {"session_id": session_id, "user_id": self.user_id})
        ).one_or_none()
        if row is None:
            return None
        return Head(
            active_since=row.last_activity_at,
            status=row.status,
            head_seq=row.head_seq,
            path_hash=row.path_hash,
        )

    async def append(
        self,
        bus: EventBus,
        *,
        session_id: str,
        parent_seq: int | None,
        messages: list[NewMessage],
        now: datetime,
        title: str | None = None,
        api_client: str | None = None,
    ) -> int:
        """Store `messages` as a chain under `parent_seq` of the conversation `session_id`,
        which is created (with `title`) when `title` is given. The last one's seq; the head
        stays where it was (the turn that follows moves it)."""
        keyring = keyring_of(self.db)
        created = title is not None
        if created:
            start, depth = 1, 0
        else:
            locked = (
                await self.db.execute(
                    LOCK_FOR_APPEND,
                    {"session_id": session_id, "user_id": self.user_id, "parent_seq": parent_seq},
                )
            ).one()
            start, depth = locked.message_count + 1, locked.parent_depth or 0
        rows: list[dict[str, Any]] = []
        tokens: list[dict[str, Any]] = []
        parent = parent_seq
        for offset, message in enumerate(messages):
            seq = start + offset
            rows.append(
                {
                    "session_id": session_id,
                    "seq": seq,
                    "user_id": self.user_id,
                    "parent_seq": parent,
                    "depth": depth + offset + 1,
                    "role": message.role,
                    **sealed_content(
                        keyring,
                        user_id=self.user_id,
                        session_id=session_id,
                        seq=seq,
                        content=message.content,
                    ),
                    "image_url": None,
                    "metadata": message.meta,
                    "path_hash": message.path_hash,
                    "created_at": now,
                }
            )
            if keyring is not None:
                tokens.append(
                    token_row(
                        keyring,
                        user_id=self.user_id,
                        session_id=session_id,
                        seq=seq,
                        text=message.content,
                    )
                )
            parent = seq
        last = start + len(messages) - 1
        if created:
            assert title is not None
            sealed = sealed_title(keyring, user_id=self.user_id, session_id=session_id, title=title)
            await self.db.execute(
                sa.insert(_sessions).values(
                    id=session_id,
                    user_id=self.user_id,
                    title=sealed["title"],
                    title_sealed=sealed["title_sealed"],
                    key_id=sealed["title_key_id"],
                    status="active",
                    created_at=now,
                    last_activity_at=now,
                    message_count=last,
                    head_seq=last,
                    api_client=api_client,
                )
            )
            if keyring is not None:
                tokens.append(
                    token_row(
                        keyring,
                        user_id=self.user_id,
                        session_id=session_id,
                        seq=TITLE_SEQ,
                        text=title,
                    )
                )
            bus.stage(
                self.db, user_event(self.user_id, "session", sessionId=session_id, change="created")
            )
        else:
            await self.db.execute(
                sa.update(_sessions)
                .where(_sessions.c.id == session_id, _sessions.c.user_id == self.user_id)
                .values(message_count=last, last_activity_at=now)
            )
        await self.db.execute(sa.insert(_messages), rows)
        if tokens:
            await self.db.execute(upsert_tokens(tokens))
        bus.stage(
            self.db,
            *(
                user_event(
                    self.user_id, "message", sessionId=session_id, seq=r["seq"], role=r["role"]
                )
                for r in rows
            ),
        )
        return last
