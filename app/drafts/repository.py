"""The drafts ledger's SQL, and the only place it is written.

`DraftRepository(db, user_id)` is built for one owner: every statement it runs filters on
`user_id` (`app.core.tenancy`), so another user's draft, post or image is a missing one.
Sealed columns (draft text, images) are sealed and opened by the ORM's own hooks
(`app.encryption.sealed`, registered in `app.drafts.models`). Writes flush; the caller's
unit of work commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.core.tenancy import owned
from app.drafts.models import (
    DraftStatus,
    PostDraft,
    PostDraftVersion,
    PublishedPost,
    StoredImage,
)

# The drafts of the active branch: those whose current version was written on the path
# from :from_seq up (the turn's parent). The walk up stops below the oldest draft's seq,
# so a conversation without drafts walks nothing.
_BRANCH_DRAFTS = (
    sa.text(
        """
        WITH RECURSIVE drafts AS (
            SELECT d.id, v.source_message_seq AS at
            FROM post_draft d
            JOIN post_draft_version v ON v.user_id = d.user_id AND v.draft_id = d.id
                                     AND v.version = d.current_version
            WHERE d.user_id = :user_id AND d.session_id = :session_id
        ),
        path (seq, parent_seq) AS (
            SELECT seq, parent_seq FROM chat_message
            WHERE session_id = :session_id AND user_id = :user_id AND seq = :from_seq
              AND seq >= (SELECT min(at) FROM drafts)
            UNION ALL
            SELECT m.seq, m.parent_seq FROM path p
            JOIN chat_message m ON m.session_id = :session_id AND m.user_id = :user_id
                               AND m.seq = p.parent_seq
            WHERE m.seq >= (SELECT min(at) FROM drafts)
        )
        SELECT id FROM drafts WHERE at IN (SELECT seq FROM path)
        """
    )
    .columns(id=sa.Uuid)
    .cte("branch_drafts")
)


class DraftRepository:
    """The ledger's statements for one owner."""

    def __init__(self, db: AsyncSession, user_id: uuid.UUID) -> None:
        if user_id is None:
            raise TypeError("DraftRepository needs the owner's id, not None")
        self.db = db
        self.user_id = user_id

    async def _one(self, stmt: Any) -> Any:
        return (await self.db.execute(stmt)).scalar_one_or_none()

    # -- drafts

    async def latest(self, session_id: str, *, for_update: bool = False) -> PostDraft | None:
        stmt = (
            owned(PostDraft, self.user_id)
            .where(col(PostDraft.session_id) == session_id)
            .order_by(col(PostDraft.opened_message_seq).desc())
            .limit(1)
        )
        if for_update:
            stmt = stmt.with_for_update()
        found: PostDraft | None = await self._one(stmt)
        return found

    async def pending(self, session_id: str, *, for_update: bool = False) -> PostDraft | None:
        stmt = owned(PostDraft, self.user_id).where(
            col(PostDraft.session_id) == session_id,
            col(PostDraft.status) == DraftStatus.PENDING,
        )
        if for_update:
            stmt = stmt.with_for_update()
        found: PostDraft | None = await self._one(stmt)
        return found

    async def draft(self, draft_id: uuid.UUID, *, for_update: bool = False) -> PostDraft | None:
        stmt = owned(PostDraft, self.user_id).where(col(PostDraft.id) == draft_id)
        if for_update:
            stmt = stmt.with_for_update()
        found: PostDraft | None = await self._one(stmt)
        return found

    async def version(self, draft_id: uuid.UUID, version: int) -> PostDraftVersion | None:
        stmt = owned(PostDraftVersion, self.user_id).where(
            col(PostDraftVersion.draft_id) == draft_id,
            col(PostDraftVersion.version) == version,
        )
        found: PostDraftVersion | None = await self._one(stmt)
        return found

    async def on_branch(
        self, session_id: str, *, from_seq: int
    ) -> list[tuple[PostDraft, PostDraftVersion | None, bool]]:
        """The pending draft and the latest one of the active branch (the path from
        `from_seq` up), each with its current version and whether it is the latest, in
        one query."""
        user_id = self.user_id
        on_branch = col(PostDraft.id).in_(sa.select(_BRANCH_DRAFTS.c.id))
        latest_id = (
            owned(PostDraft, user_id, PostDraft.id)
            .where(col(PostDraft.session_id) == session_id, on_branch)
            .order_by(col(PostDraft.opened_message_seq).desc())
            .limit(1)
            .correlate(None)  # its own scan of the session's drafts, not the outer row's
            .scalar_subquery()
        )
        is_latest = (col(PostDraft.id) == latest_id).label("is_latest")
        stmt = (
            owned(PostDraft, user_id, PostDraft, PostDraftVersion, is_latest)
            .outerjoin(
                PostDraftVersion,
                sa.and_(
                    col(PostDraftVersion.user_id) == col(PostDraft.user_id),
                    col(PostDraftVersion.draft_id) == col(PostDraft.id),
                    col(PostDraftVersion.version) == col(PostDraft.current_version),
                ),
            )
            .where(
                col(PostDraft.session_id) == session_id,
                on_branch,
                sa.or_(
                    col(PostDraft.status) == DraftStatus.PENDING, col(PostDraft.id) == latest_id
                ),
            )
        )
        params = {"user_id": user_id, "session_id": session_id, "from_seq": from_seq}
        rows = (await self.db.execute(stmt, params)).all()
        return [(draft, version, bool(latest)) for draft, version, latest in rows]

    async def drafts_of(self, session_id: str) -> Sequence[PostDraft]:
        """The conversation's drafts, oldest first."""
        stmt = (
            owned(PostDraft, self.user_id)
            .where(col(PostDraft.session_id) == session_id)
            .order_by(col(PostDraft.opened_message_seq))
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def versions_of(self, draft_ids: Sequence[uuid.UUID]) -> Sequence[PostDraftVersion]:
        """Every version of these drafts, by draft then version."""
        stmt = (
            owned(PostDraftVersion, self.user_id)
            .where(col(PostDraftVersion.draft_id).in_(draft_ids))
            .order_by(col(PostDraftVersion.draft_id), col(PostDraftVersion.version))
        )
        return (await self.db.execute(stmt)).scalars().all()

    # -- posts

    async def post_for(self, draft_id: uuid.UUID) -> PublishedPost | None:
        stmt = owned(PublishedPost, self.user_id).where(col(PublishedPost.draft_id) == draft_id)
        found: PublishedPost | None = await self._one(stmt)
        return found

    async def posts_of(self, draft_ids: Sequence[uuid.UUID]) -> Sequence[PublishedPost]:
        stmt = owned(PublishedPost, self.user_id).where(col(PublishedPost.draft_id).in_(draft_ids))
        return (await self.db.execute(stmt)).scalars().all()

    async def posts_page(
        self, *, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[PublishedPost]:
        """Up to `limit` posts, newest first, older than `before` (published_at, id)."""
        stmt = owned(PublishedPost, self.user_id)
        if before is not None:
            at, ident = before
            stmt = stmt.where(
                sa.tuple_(col(PublishedPost.published_at), col(PublishedPost.id))
                < sa.tuple_(sa.literal(at), sa.literal(ident))
            )
        stmt = stmt.order_by(col(PublishedPost.published_at).desc(), col(PublishedPost.id).desc())
        return (await self.db.execute(stmt.limit(limit))).scalars().all()

    async def add_post_once(self, post: PublishedPost) -> None:
        """Insert `post` in a savepoint: a post already recorded for its draft raises
        IntegrityError and leaves the transaction usable."""
        self._check(post)
        async with self.db.begin_nested():
            self.db.add(post)
            await self.db.flush()

    # -- images

    async def image(self, image_id: uuid.UUID) -> StoredImage | None:
        stmt = owned(StoredImage, self.user_id).where(col(StoredImage.id) == image_id)
        found: StoredImage | None = await self._one(stmt)
        return found

    # -- writes

    async def add(self, *rows: PostDraft | PostDraftVersion | StoredImage) -> None:
        """Insert new rows of this owner (in order) and flush."""
        for row in rows:
            self._check(row)
            self.db.add(row)
        await self.db.flush()

    async def save(self) -> None:
        """Write the changes made to loaded rows (flush)."""
        await self.db.flush()

    def _check(self, row: Any) -> None:
        if row.user_id != self.user_id:
            raise ValueError("a row of another owner cannot go through this repository")
