"""Share links: create or refresh, revoke, list, and read a snapshot by its token.

Services flush; the caller owns the transaction. Every owner-side query filters on
`user_id`; the public side finds a link by its token alone and answers the same "not
found" for a token that never existed, was revoked, or has expired.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations import tree
from app.conversations.models import ChatMessage, ChatSession, SessionStatus
from app.conversations.trash import on_trashed
from app.core.errors import ConflictError, NotFoundError
from app.core.tenancy import owned, owned_delete
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column
from app.sharing.models import TOKEN_BYTES, TOKEN_MAX_CHARS, SharedLink

_links = SharedLink.__table__  # type: ignore[attr-defined]


def link_not_found() -> NotFoundError:
    return NotFoundError(
        "This link does not exist, was revoked or has expired.", code="share_not_found"
    )


def is_live(link: SharedLink, *, now: datetime) -> bool:
    return link.expires_at is None or link.expires_at > now


def _expiry(now: datetime, days: int | None) -> datetime | None:
    return None if days is None else now + timedelta(days=days)


@dataclass(frozen=True)
class Shared:
    link: SharedLink
    created: bool  # a new token (first share, or the old link had expired)


async def share(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    now: datetime,
    expires_in_days: int | None,
    keep_expiry: bool,
) -> Shared:
    """Shares the owner's conversation as it is now. A live link keeps its token and gets
    the new snapshot (and, unless `keep_expiry`, the new expiry); an expired one gets a new
    token, so a link that has stopped working never comes back."""
    # The conversation's row is the lock: two shares at once make one link, and a turn
    # closing meanwhile is either wholly in the snapshot or not at all. The sealed copy
    # comes with the title, or a sealed title would read as blank.
    await session.refresh(
        chat_session,
        ["title", "title_sealed", "key_id", "head_seq", "status"],
        with_for_update=True,
    )
    if chat_session.status == SessionStatus.TRASHED:
        raise ConflictError(
            "This conversation is in the trash; restore it to share it.", code="session_trashed"
        )
    link = (
        await session.execute(
            owned(SharedLink, chat_session.user_id).where(
                col(SharedLink.session_id) == chat_session.id
            )
        )
    ).scalar_one_or_none()
    created = link is None or not is_live(link, now=now)
    if link is None:
        link = SharedLink(
            user_id=chat_session.user_id,
            session_id=chat_session.id,
            token="",
            title=chat_session.title,
            upto_seq=0,
            created_at=now,
            refreshed_at=now,
        )
        session.add(link)
    if created:
        link.token = secrets.token_urlsafe(TOKEN_BYTES)
        link.created_at = now
        link.expires_at = _expiry(now, expires_in_days)
    elif not keep_expiry:
        link.expires_at = _expiry(now, expires_in_days)
    link.title = chat_session.title
    link.upto_seq = chat_session.head_seq or 0
    link.refreshed_at = now
    await session.flush()
    return Shared(link=link, created=created)


async def revoke(*, session: AsyncSession, user_id: uuid.UUID, session_id: str) -> bool:
    """Ends the conversation's link for good; False if it had none."""
    gone = await session.execute(
        owned_delete(_links, user_id)
        .where(_links.c.session_id == session_id)
        .returning(_links.c.id)
    )
    return gone.first() is not None


@on_trashed
async def revoke_for_sessions(
    session: AsyncSession, user_id: uuid.UUID, session_ids: Sequence[str]
) -> None:
    """Ends the links of these conversations of the user (they went to the trash; a
    restore does not bring a link back)."""
    if session_ids:
        await session.execute(
            owned_delete(_links, user_id).where(
                _links.c.session_id == sa.any_(sa.cast(list(session_ids), ARRAY(sa.String)))
            )
        )


async def live_link(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, now: datetime
) -> SharedLink | None:
    link = (
        await session.execute(
            owned(SharedLink, user_id).where(col(SharedLink.session_id) == session_id)
        )
    ).scalar_one_or_none()
    return link if link is not None and is_live(link, now=now) else None


async def list_live(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> Sequence[SharedLink]:
    """The user's links that still open, newest first."""
    rows = await session.execute(
        owned(SharedLink, user_id)
        .where(sa.or_(col(SharedLink.expires_at).is_(None), col(SharedLink.expires_at) > now))
        .order_by(col(SharedLink.created_at).desc(), col(SharedLink.id).desc())
    )
    return rows.scalars().all()


def _path_to(link: SharedLink) -> sa.Select[tuple[int]]:
    """The seqs of the path from the root to the link's last message."""
    path = (
        tree.PATH_FROM.bindparams(
            session_id=link.session_id, user_id=link.user_id, head_seq=link.upto_seq
        )
        .columns(seq=sa.Integer)
        .subquery("path")
    )
    return sa.select(path.c.seq)


async def shown_counts(
    *, session: AsyncSession, user_id: uuid.UUID, links: Sequence[SharedLink]
) -> dict[str, int]:
    """How many messages each link shows (its last message's depth), by session id."""
    if not links:
        return {}
    pairs = sa.values(sa.column("sid", sa.String), sa.column("seq", sa.Integer), name="shown").data(
        [(link.session_id, link.upto_seq) for link in links]
    )
    rows = await session.execute(
        owned(ChatMessage, user_id, col(ChatMessage.session_id), col(ChatMessage.depth)).join(
            pairs,
            sa.and_(
                col(ChatMessage.session_id) == pairs.c.sid, col(ChatMessage.seq) == pairs.c.seq
            ),
        )
    )
    return {sid: depth for sid, depth in rows.tuples()}


@dataclass(frozen=True)
class SnapshotMessage:
    role: str
    content: str
    created_at: datetime


@dataclass(frozen=True)
class Snapshot:
    title: str
    shared_at: datetime
    expires_at: datetime | None
    messages: list[SnapshotMessage]


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _plausible(token: str) -> bool:
    """Shaped like a token: anything else cannot match, and needs no query."""
    return 0 < len(token) <= TOKEN_MAX_CHARS and _TOKEN_CHARS.issuperset(token)


async def read_snapshot(*, session: AsyncSession, token: str, now: datetime) -> Snapshot:
    """What the link shows: its title and the messages up to `upto_seq`. Never the owner,
    the ids, or anything after the snapshot. NotFoundError for any link that does not open."""
    if not _plausible(token):
        raise link_not_found()
    # The one read by something other than the owner: the token is the key. The link's
    # owner is the conversation's (same_owner_fk), and every read after this is by it.
    link = (
        await session.execute(
            sa.select(SharedLink)
            .join(
                ChatSession,
                sa.and_(
                    col(ChatSession.id) == col(SharedLink.session_id),
                    col(ChatSession.user_id) == col(SharedLink.user_id),
                ),
            )
            .where(
                col(SharedLink.token) == token,
                col(ChatSession.status) != SessionStatus.TRASHED,
            )
        )
    ).scalar_one_or_none()
    # Unknown, revoked and expired answer alike, after the same one index lookup.
    if link is None or not is_live(link, now=now):
        raise link_not_found()
    rows = await session.execute(
        owned(
            ChatMessage,
            link.user_id,
            col(ChatMessage.seq),
            col(ChatMessage.role),
            col(ChatMessage.content),
            col(ChatMessage.content_sealed),
            col(ChatMessage.key_id),
            col(ChatMessage.created_at),
        )
        .where(
            col(ChatMessage.session_id) == link.session_id,
            col(ChatMessage.seq).in_(_path_to(link)),
        )
        .order_by(col(ChatMessage.seq))
    )
    keyring = keyring_of(session)
    messages = [
        SnapshotMessage(
            role=role,
            content=open_column(
                keyring,
                ChatMessage,
                "content",
                plain=plain,
                sealed=sealed,
                key_id=key_id,
                user_id=link.user_id,
                row=(link.session_id, seq),
            ),
            created_at=at,
        )
        for seq, role, plain, sealed, key_id, at in rows
    ]
    return Snapshot(
        title=link.title,
        shared_at=link.refreshed_at,
        expires_at=link.expires_at,
        messages=messages,
    )
