"""Every statement over share links, and the snapshot a link shows.

`ShareRepository(session, owner_id)` is built for one owner: each statement names
`user_id = :owner`, and the messages it returns are opened when encryption is on.
`PublicShareRepository(session)` holds the one read that is not by the owner: a link
found by its unguessable token (every read after it is by the link's owner).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.conversations.models import ChatMessage, ChatSession, SessionStatus
from app.conversations.repository import PATH_FROM
from app.core.tenancy import owned, owned_delete
from app.encryption.crypto import keyring_of
from app.encryption.sealed import open_column
from app.sharing.models import SharedLink

_links = SharedLink.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ShownMessage:
    seq: int
    role: str
    content: str
    created_at: datetime


def _path_to(link: SharedLink) -> sa.Select[tuple[int]]:
    """The seqs of the path from the root to the link's last message."""
    path = (
        PATH_FROM.bindparams(
            session_id=link.session_id, user_id=link.user_id, head_seq=link.upto_seq
        )
        .columns(seq=sa.Integer)
        .subquery("path")
    )
    return sa.select(path.c.seq)


class ShareRepository:
    """One owner's share links: every statement is scoped to `owner_id`."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def lock_conversation(self, chat_session: ChatSession) -> None:
        """Locks the conversation's row and reads what a snapshot takes from it again (the
        sealed copy comes with the title, or a sealed title would read as blank)."""
        if chat_session.user_id != self.owner_id:
            raise PermissionError("not this owner's conversation")
        await self.session.refresh(
            chat_session,
            ["title", "title_sealed", "key_id", "head_seq", "status"],
            with_for_update=True,
        )

    async def link_of(self, session_id: str) -> SharedLink | None:
        """The conversation's link, live or expired."""
        return (
            await self.session.execute(
                owned(SharedLink, self.owner_id).where(col(SharedLink.session_id) == session_id)
            )
        ).scalar_one_or_none()

    async def revoke(self, session_id: str) -> bool:
        """Deletes the conversation's link; False if it had none."""
        gone = await self.session.execute(
            owned_delete(_links, self.owner_id)
            .where(_links.c.session_id == session_id)
            .returning(_links.c.id)
        )
        return gone.first() is not None

    async def revoke_all_of(self, session_ids: Sequence[str]) -> None:
        """Deletes the links of these conversations."""
        if session_ids:
            await self.session.execute(
                owned_delete(_links, self.owner_id).where(
                    _links.c.session_id == sa.any_(sa.cast(list(session_ids), ARRAY(sa.String)))
                )
            )

    async def live(self, now: datetime) -> Sequence[SharedLink]:
        """The links that still open, newest first."""
        rows = await self.session.execute(
            owned(SharedLink, self.owner_id)
            .where(sa.or_(col(SharedLink.expires_at).is_(None), col(SharedLink.expires_at) > now))
            .order_by(col(SharedLink.created_at).desc(), col(SharedLink.id).desc())
        )
        return rows.scalars().all()

    async def shown_counts(self, links: Sequence[SharedLink]) -> dict[str, int]:
        """How many messages each link shows (its last message's depth), by session id."""
        if not links:
            return {}
        pairs = sa.values(
            sa.column("sid", sa.String), sa.column("seq", sa.Integer), name="shown"
        ).data([(link.session_id, link.upto_seq) for link in links])
        rows = await self.session.execute(
            owned(
                ChatMessage, self.owner_id, col(ChatMessage.session_id), col(ChatMessage.depth)
            ).join(
                pairs,
                sa.and_(
                    col(ChatMessage.session_id) == pairs.c.sid,
                    col(ChatMessage.seq) == pairs.c.seq,
                ),
            )
        )
        return {sid: depth for sid, depth in rows.tuples()}

    async def shown_messages(self, link: SharedLink) -> list[ShownMessage]:
        """The messages the link shows: the path from the root to `upto_seq`, opened."""
        if link.user_id != self.owner_id:
            raise PermissionError("not this owner's link")
        rows = await self.session.execute(
            owned(
                ChatMessage,
                self.owner_id,
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
        keyring = keyring_of(self.session)
        return [
            ShownMessage(
                seq=seq,
                role=role,
                content=open_column(
                    keyring,
                    ChatMessage,
                    "content",
                    plain=plain,
                    sealed=sealed,
                    key_id=key_id,
                    user_id=self.owner_id,
                    row=(link.session_id, seq),
                ),
                created_at=at,
            )
            for seq, role, plain, sealed, key_id, at in rows
        ]


class PublicShareRepository:
    """The public side: a link found by its token alone, whoever asks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def link_by_token(self, token: str) -> SharedLink | None:
        """The link with this token, unless its conversation is in the trash (one index
        lookup; live or expired is the caller's to tell)."""
        return (
            await self.session.execute(
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


class ShareOperatorRepository:
    """Every user's share links, for the purge of the ones that ended."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def delete_ended(self, before: datetime, *, batch: int) -> int:
        """Deletes up to `batch` links that expired before `before` (a revoked link is
        deleted when revoked); returns how many."""
        picked = (
            sa.select(col(SharedLink.id))
            .where(col(SharedLink.expires_at) < before)
            .order_by(col(SharedLink.expires_at))
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = await self.session.execute(
            sa.delete(SharedLink)
            .where(col(SharedLink.id).in_(picked))
            .returning(col(SharedLink.id))
        )
        return len(rows.all())
