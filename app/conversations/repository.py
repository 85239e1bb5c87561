"""Every statement over conversations, their messages, tags, the audit trail and the sweep.

`ConversationRepository(session, owner_id)` is built for one owner: each statement it runs
names `user_id = :owner`, and each row it returns is opened (sealed columns decrypted) when
encryption is on. `ConversationOperatorRepository(session)` is the cross-user side: the
sweep, the trash purge, an operator's delete, whole-database counts and the trail of
everyone. It is named so at every call site, so reading across users is never an accident.

The blind index's table is written here too: sealed messages and titles index themselves
on every ORM write (the hooks below, added when `app.conversations` is imported), and
`upsert_search_tokens` / `matching_rows` serve the Core writers and search.

Services call these and flush; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.auth.models import User
from app.conversations.ids import is_well_formed
from app.conversations.models import (
    TITLE_SEQ,
    AuditEvent,
    ChatMessage,
    ChatSession,
    MessageSearchToken,
    RetentionRun,
    SessionStatus,
)
from app.core.tenancy import owned, owned_by
from app.encryption import sealed
from app.encryption.blind_index import TokenQuery, token_row
from app.encryption.crypto import Keyring, keyring_of
from app.encryption.sealed import open_column, seal_row

_sessions = ChatSession.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Removed:
    """A conversation deleted for good: what its audit row and event need."""

    id: str
    user_id: uuid.UUID
    title: str


@dataclass(frozen=True)
class StoredMessage:
    """A message as the context reads it, its content opened."""

    seq: int
    role: str
    content: str
    image_url: str | None


@dataclass(frozen=True)
class TagCount:
    tag: str
    count: int


@dataclass(frozen=True)
class SessionStats:
    active: int
    archived: int
    total: int
    messages: int
    users: int


@dataclass(frozen=True)
class SweepStats:
    runs: int
    archived: int
    last_finished_epoch: float | None


def open_message(
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    seq: int,
    sealed: bytes | None,
    key_id: str | None,
    plain: str = "",
) -> str:
    """A message's content read by a Core statement: `plain`, or the sealed copy opened."""
    content: str = open_column(
        keyring_of(session),
        ChatMessage,
        "content",
        plain=plain,
        sealed=sealed,
        key_id=key_id,
        user_id=user_id,
        row=(session_id, seq),
    )
    return content


def sealed_content(
    keyring: Keyring | None, *, user_id: uuid.UUID, session_id: str, seq: int, content: str
) -> dict[str, Any]:
    """`content`, `content_sealed` and `key_id` of a message row written by a Core
    statement: the text as it is, or sealed with ENCRYPTION_KEYS."""
    row = {"user_id": user_id, "session_id": session_id, "seq": seq, "content": content}
    sealed_row = seal_row(keyring, ChatMessage, row)
    return {
        "content": sealed_row["content"],
        "content_sealed": sealed_row.get("content_sealed"),
        "key_id": sealed_row.get("key_id"),
    }


def sealed_title(
    keyring: Keyring | None, *, user_id: uuid.UUID, session_id: str, title: str
) -> dict[str, Any]:
    """`title`, `title_sealed` and `title_key_id` of a new session row written by a Core
    statement."""
    row = {"user_id": user_id, "id": session_id, "title": title}
    sealed_row = seal_row(keyring, ChatSession, row)
    return {
        "title": sealed_row["title"],
        "title_sealed": sealed_row.get("title_sealed"),
        "title_key_id": sealed_row.get("key_id"),
    }


def open_title(session: AsyncSession, row: Any) -> str:
    """A session's title from a Core row holding `id, user_id, title, title_sealed, key_id`."""
    title: str = open_column(
        keyring_of(session),
        ChatSession,
        "title",
        plain=row.title,
        sealed=row.title_sealed,
        key_id=row.key_id,
        user_id=row.user_id,
        row=(row.id,),
    )
    return title


# ---------------------------------------------------------------------------- statements
# Written once: a statement built per call costs more CPU than its rows.

_CONTEXT_ROWS = sa.text(
    "SELECT seq, role, content, image_url, content_sealed, key_id FROM chat_message"
    " WHERE session_id = :session_id AND user_id = :user_id ORDER BY seq DESC LIMIT :limit"
)

# One session by id and owner, built once (every route on a conversation reads it first).
_OWNER: Any = sa.bindparam("owner_id")  # given at each call
_OWNED_SESSION = owned(ChatSession, _OWNER).where(col(ChatSession.id) == sa.bindparam("id"))
_OWNED_SESSION_FOR_UPDATE = _OWNED_SESSION.with_for_update()

# The mapped columns of chat_message (not the generated search vector).
_MESSAGE_COLUMNS = [
    c
    for c in ChatMessage.__table__.columns  # type: ignore[attr-defined]
    if c.computed is None
]

# A page of the active path, root to head: the messages after :after_seq (at most :limit),
# whole, each with its parent's children (its versions, itself included): one statement
# where reading the seqs, then the rows, then the versions took three round trips. The
# versions are one index lookup on (session_id, parent_seq) per message.
_PATH_PAGE = sa.text(
    f"""
    WITH RECURSIVE path (seq, parent_seq) AS (
        SELECT seq, parent_seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id
          AND seq = CAST(:head_seq AS integer) AND seq > :after_seq
        UNION ALL
        SELECT m.seq, m.parent_seq FROM path p
        JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                           AND m.seq = p.parent_seq
        WHERE m.seq > :after_seq
    ),
    page AS (SELECT seq FROM path ORDER BY seq LIMIT :limit)
    SELECT {", ".join(f"m.{c.name}" for c in _MESSAGE_COLUMNS)},
           COALESCE(
               (SELECT array_agg(c.seq ORDER BY c.seq) FROM chat_message c
                WHERE c.session_id = :session_id AND c.user_id = :user_id
                  AND c.parent_seq = m.parent_seq),
               (SELECT array_agg(c.seq ORDER BY c.seq) FROM chat_message c
                WHERE m.parent_seq IS NULL AND c.session_id = :session_id
                  AND c.user_id = :user_id AND c.parent_seq IS NULL)
           ) AS sibling_seqs
    FROM page
    JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                       AND m.seq = page.seq
    ORDER BY m.seq
    """  # noqa: S608  (only the table's column names are formatted in)
)

# The newest leaf under :seq: from it, at each step down its newest child.
_NEWEST_LEAF = sa.text(
    """
    WITH RECURSIVE down (seq) AS (
        SELECT seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id AND seq = :seq
        UNION ALL
        SELECT c.seq FROM down d
        CROSS JOIN LATERAL (
            SELECT seq FROM chat_message
            WHERE session_id = :session_id AND user_id = :user_id AND parent_seq = d.seq
            ORDER BY seq DESC LIMIT 1
        ) c
    )
    SELECT max(seq) FROM down
    """
)

# The active path's seqs from the head up, newest first (whole, for exports and shares).
PATH_FROM = sa.text(
    """
    WITH RECURSIVE path (seq, parent_seq) AS (
        SELECT seq, parent_seq FROM chat_message
        WHERE session_id = :session_id AND user_id = :user_id AND seq = :head_seq
        UNION ALL
        SELECT m.seq, m.parent_seq FROM path p
        JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                           AND m.seq = p.parent_seq
    )
    SELECT seq FROM path
    """
)

# The images a conversation showed: its drafts' versions and its messages' image URLs.
# Only its owner's images go, and never one a published post still shows.
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_DELETE_IMAGES = sa.text(
    f"""
    DELETE FROM stored_image AS i
    WHERE i.id IN (
        SELECT v.image_id FROM post_draft_version AS v
        JOIN post_draft AS d ON d.id = v.draft_id
        WHERE d.session_id = ANY(:ids) AND v.image_id IS NOT NULL
        UNION
        SELECT substring(m.image_url FROM '^/api/images/({_UUID})$')::uuid
        FROM chat_message AS m
        WHERE m.session_id = ANY(:ids) AND m.image_url ~ '^/api/images/{_UUID}$'
    )
    AND i.user_id IN (SELECT s.user_id FROM chat_session AS s WHERE s.id = ANY(:ids))
    AND NOT EXISTS (SELECT 1 FROM published_post AS p WHERE p.image_id = i.id)
    """  # noqa: S608  (only a constant pattern is formatted in)
).bindparams(sa.bindparam("ids", type_=ARRAY(sa.String)))


def _any_id(ids: Sequence[str]) -> sa.ColumnElement[bool]:
    condition: sa.ColumnElement[bool] = _sessions.c.id == sa.any_(
        sa.cast(list(ids), ARRAY(sa.String))
    )
    return condition


async def _delete_found(session: AsyncSession, found: Sequence[str]) -> list[Removed]:
    """Deletes the locked sessions `found` (messages, drafts, turns and share links by
    cascade) with their images; their titles come back opened."""
    if not found:
        return []
    s = _sessions.c
    await session.execute(_DELETE_IMAGES, {"ids": list(found)})
    rows = (
        await session.execute(
            sa.delete(_sessions)
            .where(_any_id(found))
            .returning(s.id, s.user_id, s.title, s.title_sealed, s.key_id)
        )
    ).all()
    return [Removed(id=r.id, user_id=r.user_id, title=open_title(session, r)) for r in rows]


async def _activity(
    session: AsyncSession, conds: list[Any], limit: int, before: int | None
) -> list[AuditEvent]:
    if before is not None:
        conds.append(col(AuditEvent.id) < before)
    rows = await session.execute(
        sa.select(AuditEvent).where(*conds).order_by(col(AuditEvent.id).desc()).limit(limit)
    )
    return list(rows.scalars().all())


# ---------------------------------------------------------------------- search tokens
# The blind index's table (`message_search_token`); the tokens are made by
# `app.encryption.blind_index`.

_tokens = MessageSearchToken.__table__  # type: ignore[attr-defined]


def _overlaps(tokens: list[bytes]) -> sa.ColumnElement[bool]:
    found: sa.ColumnElement[bool] = _tokens.c.tokens.overlap(
        sa.literal(tokens, ARRAY(sa.LargeBinary))
    )
    return found


def matching_rows(
    query: TokenQuery, *, user_id: uuid.UUID, session_ids: list[str] | None = None
) -> sa.Select[Any]:
    """SELECT session_id, message_seq of the user's sealed messages and titles (seq 0)
    that the query finds."""
    t = _tokens.c
    conds: list[sa.ColumnElement[bool]] = [owned_by(_tokens, user_id)]
    if session_ids is not None:
        conds.append(t.session_id == sa.any_(sa.cast(session_ids, ARRAY(sa.String))))
    conds.extend(_overlaps(group) for group in query.required)
    conds.extend(sa.not_(sa.and_(*(_overlaps(g) for g in groups))) for groups in query.excluded)
    return sa.select(t.session_id, t.message_seq).where(*conds)


def upsert_search_tokens(rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT UPDATE of blind-index rows (`token_row`); each names its
    owner."""
    stmt = pg_insert(_tokens).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=[_tokens.c.session_id, _tokens.c.message_seq],
        set_={"tokens": stmt.excluded.tokens, "key_id": stmt.excluded.key_id},
    )


def write_tokens(
    connection: sa.Connection,
    keyring: Keyring,
    *,
    user_id: uuid.UUID,
    session_id: str,
    seq: int,
    text: str,
) -> None:
    """Index one sealed message or title, inside the flush that wrote it."""
    row = token_row(keyring, user_id=user_id, session_id=session_id, seq=seq, text=text)
    connection.execute(upsert_search_tokens([row]))


# The ORM's sealed writes of messages and titles index themselves here.
@sealed.on_sealed_write(ChatMessage)
def _index_message(connection: sa.Connection, target: Any, keyring: Keyring) -> None:
    write_tokens(
        connection,
        keyring,
        user_id=target.user_id,
        session_id=target.session_id,
        seq=target.seq,
        text=target.content,
    )


@sealed.on_sealed_write(ChatSession)
def _index_title(connection: sa.Connection, target: Any, keyring: Keyring) -> None:
    write_tokens(
        connection,
        keyring,
        user_id=target.user_id,
        session_id=target.id,
        seq=TITLE_SEQ,
        text=target.title,
    )


# ------------------------------------------------------------------------------- owner


class ConversationRepository:
    """One owner's conversations: every statement is scoped to `owner_id`."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    # -- sessions

    async def get(self, session_id: str, *, for_update: bool = False) -> ChatSession | None:
        """The session by id AND owner, or None (another user's is a missing one)."""
        if not is_well_formed(session_id):
            return None
        stmt = _OWNED_SESSION_FOR_UPDATE if for_update else _OWNED_SESSION
        rows = await self.session.execute(stmt, {"owner_id": self.owner_id, "id": session_id})
        return rows.scalar_one_or_none()

    async def tag_counts(self) -> list[TagCount]:
        """The owner's tags with how many conversations (not in the trash, not temporary)
        carry each, most used first."""
        tag = sa.func.unnest(_sessions.c.tags).label("tag")
        inner = (
            owned(_sessions, self.owner_id, tag)
            .where(_sessions.c.status != SessionStatus.TRASHED, sa.not_(_sessions.c.temporary))
            .subquery()
        )
        rows = await self.session.execute(
            sa.select(inner.c.tag, sa.func.count().label("n"))
            .group_by(inner.c.tag)
            .order_by(sa.text("n DESC"), inner.c.tag)
        )
        return [TagCount(tag=r.tag, count=r.n) for r in rows]

    async def delete(self, ids: Sequence[str]) -> list[Removed]:
        """Deletes the owner's conversations among `ids` for good (locked first, so the
        images and the rows go together). Others' ids are not touched."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        found = (
            (
                await self.session.execute(
                    owned(_sessions, self.owner_id, _sessions.c.id)
                    .where(_any_id(wanted))
                    .order_by(_sessions.c.id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        return await _delete_found(self.session, found)

    async def activity(self, *, limit: int, before: int | None) -> list[AuditEvent]:
        """The owner's audit trail, newest first, `limit` rows."""
        return await _activity(self.session, [owned_by(AuditEvent, self.owner_id)], limit, before)

    # -- messages

    def open_content(
        self, session_id: str, seq: int, sealed: bytes | None, key_id: str | None, plain: str
    ) -> str:
        return open_message(self.session, self.owner_id, session_id, seq, sealed, key_id, plain)

    async def newest_messages(self, session_id: str, limit: int) -> list[StoredMessage]:
        """The `limit` newest messages, newest first, their content opened."""
        rows = await self.session.execute(
            _CONTEXT_ROWS, {"session_id": session_id, "user_id": self.owner_id, "limit": limit}
        )
        return [
            StoredMessage(
                seq=seq,
                role=role,
                content=self.open_content(session_id, seq, sealed, key_id, plain),
                image_url=image_url,
            )
            for seq, role, plain, image_url, sealed, key_id in rows.all()
        ]

    async def messages_after(
        self, session_id: str, *, after_seq: int, limit: int
    ) -> Sequence[ChatMessage]:
        rows = await self.session.execute(
            owned(ChatMessage, self.owner_id)
            .where(col(ChatMessage.session_id) == session_id, col(ChatMessage.seq) > after_seq)
            .order_by(col(ChatMessage.seq))
            .limit(limit)
        )
        return rows.scalars().all()

    async def depth_of(self, session_id: str, seq: int) -> int | None:
        """The stored depth of one message (the length of the path up from it)."""
        depth: int | None = (
            await self.session.execute(
                owned(ChatMessage, self.owner_id, col(ChatMessage.depth)).where(
                    col(ChatMessage.session_id) == session_id, col(ChatMessage.seq) == seq
                )
            )
        ).scalar_one_or_none()
        return depth

    # -- the tree

    async def path_page(
        self, session_id: str, *, head_seq: int, after_seq: int, limit: int
    ) -> list[tuple[ChatMessage, list[int]]]:
        """The active path's messages after `after_seq`, oldest first, at most `limit`,
        each with the seqs of its versions (its parent's children, ascending)."""
        rows = await self.session.execute(
            sa.select(ChatMessage, sa.column("sibling_seqs")).from_statement(_PATH_PAGE),
            {
                "session_id": session_id,
                "user_id": self.owner_id,
                "head_seq": head_seq,
                "after_seq": after_seq,
                "limit": limit,
            },
        )
        return [(message, list(siblings)) for message, siblings in rows.tuples()]

    async def path_seqs(self, session_id: str, head_seq: int) -> list[int]:
        """The seqs of the path from the root to `head_seq`, oldest first."""
        rows = await self.session.execute(
            PATH_FROM, {"session_id": session_id, "user_id": self.owner_id, "head_seq": head_seq}
        )
        return sorted(rows.scalars().all())

    async def newest_leaf(self, session_id: str, seq: int) -> int | None:
        """The newest leaf under `seq` (at each step down its newest child); None when the
        conversation has no message `seq`."""
        leaf: int | None = (
            await self.session.execute(
                _NEWEST_LEAF, {"session_id": session_id, "user_id": self.owner_id, "seq": seq}
            )
        ).scalar_one_or_none()
        return leaf


# ---------------------------------------------------------------------------- operator

_ARCHIVE_BATCH = sa.text(
    """
    WITH expired AS (
        SELECT id FROM chat_session
        WHERE status = 'active' AND last_activity_at < :cutoff AND NOT temporary
        ORDER BY last_activity_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    UPDATE chat_session AS s
    SET status = 'archived', archived_at = :now
    FROM expired
    WHERE s.id = expired.id
    RETURNING s.id, s.user_id
    """
)

_TEMPORARY_EXPIRED = sa.text(
    """
    SELECT id FROM chat_session
    WHERE temporary AND last_activity_at < :cutoff
    ORDER BY last_activity_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
    """
)

_DUE_FOR_PURGE = sa.text(
    """
    SELECT id FROM chat_session
    WHERE status = 'trashed' AND purge_at <= :now
    ORDER BY purge_at
    LIMIT :batch
    FOR UPDATE SKIP LOCKED
    """
)

# Temporary conversations are not kept, so they are in no count.
_STATS = sa.text(
    """
    SELECT
      (SELECT count(*) FROM chat_session WHERE status = 'active' AND NOT temporary) AS active,
      (SELECT count(*) FROM chat_session WHERE status = 'archived' AND NOT temporary)
        AS archived,
      (SELECT coalesce(sum(message_count), 0) FROM chat_session WHERE NOT temporary)
        AS messages,
      (SELECT count(*) FROM app_user) AS users
    """
)


class ConversationOperatorRepository:
    """Every user's conversations, for the sweep, the trash purge, operators and metrics."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete(self, ids: Sequence[str]) -> list[Removed]:
        """Deletes the conversations `ids` of any owner for good."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        found = (
            (
                await self.session.execute(
                    sa.select(_sessions.c.id)
                    .where(_any_id(wanted))
                    .order_by(_sessions.c.id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        return await _delete_found(self.session, found)

    async def archive_expired(
        self, *, cutoff: datetime, batch: int, now: datetime
    ) -> list[tuple[str, uuid.UUID]]:
        """Archives up to `batch` active sessions idle since before `cutoff`, skipping the
        rows a turn holds; returns their (id, owner)."""
        rows = await self.session.execute(
            _ARCHIVE_BATCH, {"cutoff": cutoff, "batch": batch, "now": now}
        )
        return [(r.id, r.user_id) for r in rows.all()]

    async def delete_expired_temporary(self, *, cutoff: datetime, batch: int) -> list[Removed]:
        """Deletes for good up to `batch` temporary sessions idle since before `cutoff`
        (whatever their status), with their images, skipping the rows a turn holds."""
        rows = await self.session.execute(_TEMPORARY_EXPIRED, {"cutoff": cutoff, "batch": batch})
        return await _delete_found(self.session, list(rows.scalars().all()))

    async def due_for_purge(self, *, now: datetime, batch: int) -> list[str]:
        """Up to `batch` trashed sessions whose `purge_at` passed, locked (others skipped)."""
        rows = await self.session.execute(_DUE_FOR_PURGE, {"now": now, "batch": batch})
        return list(rows.scalars().all())

    async def activity(self, *, limit: int, before: int | None) -> list[AuditEvent]:
        """Everyone's audit trail, newest first (superusers only)."""
        return await _activity(self.session, [], limit, before)

    async def stats(self) -> SessionStats:
        row = (await self.session.execute(_STATS)).one()
        return SessionStats(
            active=row.active,
            archived=row.archived,
            total=row.active + row.archived,
            messages=int(row.messages),
            users=row.users,
        )

    async def sweep_stats(self) -> SweepStats:
        row = (
            await self.session.execute(
                sa.text(
                    "SELECT count(*), coalesce(sum(archived_count), 0), "
                    "extract(epoch FROM max(finished_at)) FROM sweep_run"
                )
            )
        ).one()
        return SweepStats(
            runs=row[0],
            archived=int(row[1]),
            last_finished_epoch=float(row[2]) if row[2] is not None else None,
        )


class RetentionRepository:
    """One owner's conversations that retention removes, and the record of its runs."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    def _due(self, cutoff: datetime) -> Any:
        return owned(ChatSession, self.owner_id).where(
            col(ChatSession.status).in_([SessionStatus.ACTIVE, SessionStatus.ARCHIVED]),
            col(ChatSession.pinned).is_(False),
            # A temporary one is the sweep's: deleted for good, never to the trash.
            col(ChatSession.temporary).is_(False),
            col(ChatSession.last_activity_at) < cutoff,
        )

    async def count_due(self, cutoff: datetime) -> int:
        """How many conversations (not pinned, temporary or in the trash) were last active before
        `cutoff`."""
        stmt = sa.select(sa.func.count()).select_from(self._due(cutoff).subquery())
        return int((await self.session.execute(stmt)).scalar_one())

    async def due(self, cutoff: datetime, *, batch: int) -> Sequence[ChatSession]:
        """Up to `batch` of them, locked (rows a chat turn holds are skipped)."""
        stmt = (
            self._due(cutoff)
            .order_by(col(ChatSession.last_activity_at))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def record_run(self, *, at: datetime, days: int, trashed: int) -> None:
        self.session.add(RetentionRun(user_id=self.owner_id, at=at, days=days, trashed=trashed))
        await self.session.flush()

    async def runs(self, *, limit: int | None) -> Sequence[RetentionRun]:
        """The owner's latest runs, newest first (`limit` None: every one)."""
        stmt = owned(RetentionRun, self.owner_id).order_by(col(RetentionRun.id).desc()).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def setting(self) -> int | None:
        row = await self.session.execute(
            sa.select(col(User.retention_days)).where(col(User.id) == self.owner_id)
        )
        return row.scalar_one_or_none()

    async def set_setting(self, days: int | None) -> None:
        await self.session.execute(
            sa.update(User).where(col(User.id) == self.owner_id).values(retention_days=days)
        )


class RetentionOperatorRepository:
    """Retention across users: whom it applies to, and every run (administrators)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def users(self, *, everyone: bool) -> list[tuple[uuid.UUID, int | None]]:
        """(id, retention_days) of the users with a setting, or of every user."""
        stmt = sa.select(col(User.id), col(User.retention_days)).order_by(col(User.id))
        if not everyone:
            stmt = stmt.where(col(User.retention_days).is_not(None))
        return [(r[0], r[1]) for r in await self.session.execute(stmt)]

    async def runs(self, *, limit: int) -> Sequence[RetentionRun]:
        stmt = sa.select(RetentionRun).order_by(col(RetentionRun.id).desc()).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()
