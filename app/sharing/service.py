"""Share links: create or refresh, revoke, list, and read a snapshot by its token.

Services flush; the caller owns the transaction. The statements are in
`app.sharing.repository`: every owner-side one filters on `user_id`; the public side finds
a link by its token alone and answers the same "not
found" for a token that never existed, was revoked, or has expired.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations.models import ChatSession, SessionStatus
from app.conversations.trash import on_trashed
from app.core.errors import ConflictError, NotFoundError
from app.sharing.models import TOKEN_BYTES, TOKEN_MAX_CHARS, SharedLink
from app.sharing.repository import PublicShareRepository, ShareRepository


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
    # closing meanwhile is either wholly in the snapshot or not at all.
    repo = ShareRepository(session, chat_session.user_id)
    await repo.lock_conversation(chat_session)
    if chat_session.status == SessionStatus.TRASHED:
        raise ConflictError(
            "This conversation is in the trash; restore it to share it.", code="session_trashed"
        )
    if chat_session.temporary:
        raise ConflictError(
            "A temporary conversation cannot be shared: it is deleted once idle.",
            code="temporary_chat",
        )
    link = await repo.link_of(chat_session.id)
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
    return await ShareRepository(session, user_id).revoke(session_id)


@on_trashed
async def revoke_for_sessions(
    session: AsyncSession, user_id: uuid.UUID, session_ids: Sequence[str]
) -> None:
    """Ends the links of these conversations of the user (they went to the trash; a
    restore does not bring a link back)."""
    await ShareRepository(session, user_id).revoke_all_of(session_ids)


async def live_link(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, now: datetime
) -> SharedLink | None:
    link = await ShareRepository(session, user_id).link_of(session_id)
    return link if link is not None and is_live(link, now=now) else None


async def list_live(
    *, session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> Sequence[SharedLink]:
    """The user's links that still open, newest first."""
    return await ShareRepository(session, user_id).live(now)


async def shown_counts(
    *, session: AsyncSession, user_id: uuid.UUID, links: Sequence[SharedLink]
) -> dict[str, int]:
    """How many messages each link shows (its last message's depth), by session id."""
    return await ShareRepository(session, user_id).shown_counts(links)


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
    link = await PublicShareRepository(session).link_by_token(token)
    # Unknown, revoked and expired answer alike, after the same one index lookup.
    if link is None or not is_live(link, now=now):
        raise link_not_found()
    shown = await ShareRepository(session, link.user_id).shown_messages(link)
    messages = [
        SnapshotMessage(role=m.role, content=m.content, created_at=m.created_at) for m in shown
    ]
    return Snapshot(
        title=link.title,
        shared_at=link.refreshed_at,
        expires_at=link.expires_at,
        messages=messages,
    )
