"""The draft ledger: what was asked, what was drafted, what went out. Services flush only.

Its SQL is in `app.drafts.repository`, built for one owner: every query filters on
`user_id`. Drafts belong to a
conversation, so restoring an archived conversation (same id) brings its drafts back, and
any login of the same user sees them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import cursors
from app.core.errors import NotFoundError
from app.drafts.models import (
    DraftStatus,
    PostDraft,
    PostDraftVersion,
    PublishedPost,
    StoredImage,
)
from app.drafts.repository import DraftRepository
from app.drafts.schemas import DraftOut, DraftVersionOut, PublishedPostOut, image_url

# Published-post ids are derived from the draft id, so a retried publication carries the
# same id (and idempotency key) to the publisher as the first attempt.
_POST_NAMESPACE = uuid.UUID("6f1c7a52-3c55-4d0e-9a53-2f8e0c1b7d11")


def post_id_for(draft_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_POST_NAMESPACE, str(draft_id))


@dataclass(frozen=True)
class LedgerState:
    """What a turn needs to know: the draft waiting for an answer, and the latest draft."""

    pending: PostDraft | None
    latest: PostDraft | None
    latest_version: PostDraftVersion | None

    @property
    def has_pending(self) -> bool:
        return self.pending is not None

    @property
    def has_any(self) -> bool:
        return self.latest is not None


async def latest_draft(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, for_update: bool = False
) -> PostDraft | None:
    return await DraftRepository(session, user_id).latest(session_id, for_update=for_update)


async def pending_draft(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, for_update: bool = False
) -> PostDraft | None:
    return await DraftRepository(session, user_id).pending(session_id, for_update=for_update)


async def owned_draft(
    *, session: AsyncSession, user_id: uuid.UUID, draft_id: uuid.UUID, for_update: bool = False
) -> PostDraft | None:
    return await DraftRepository(session, user_id).draft(draft_id, for_update=for_update)


async def draft_version(
    *, session: AsyncSession, user_id: uuid.UUID, draft_id: uuid.UUID, version: int
) -> PostDraftVersion | None:
    return await DraftRepository(session, user_id).version(draft_id, version)


@dataclass(frozen=True)
class TurnLedger:
    """What a turn reads of the ledger before the model writes."""

    state: LedgerState
    pending_version: PostDraftVersion | None


EMPTY_TURN_LEDGER = TurnLedger(LedgerState(None, None, None), None)


async def turn_ledger(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str, from_seq: int | None
) -> TurnLedger:
    """The pending draft and the latest one of the active branch (the path from
    `from_seq`, the turn's parent, up), each with its current version, in one query (it
    was four round trips on every turn of a conversation with drafts). A draft written on
    another branch is neither: a "yes" here never posts it."""
    if from_seq is None:
        return EMPTY_TURN_LEDGER
    pending = latest = pending_version = latest_version = None
    rows = await DraftRepository(session, user_id).on_branch(session_id, from_seq=from_seq)
    for draft, version, latest_flag in rows:
        if draft.status == DraftStatus.PENDING:
            pending, pending_version = draft, version
        if latest_flag:
            latest, latest_version = draft, version
    return TurnLedger(LedgerState(pending, latest, latest_version), pending_version)


async def store_image(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    content_type: str,
    data: bytes,
    source: str,
    now: datetime,
) -> StoredImage:
    image = StoredImage(
        id=uuid.uuid4(),
        user_id=user_id,
        content_type=content_type,
        data=data,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        source=source,
        created_at=now,
    )
    await DraftRepository(session, user_id).add(image)
    return image


async def get_owned_image(
    *, session: AsyncSession, user_id: uuid.UUID, image_id: str
) -> StoredImage:
    """The image if it is the caller's; a missing and another user's image look the same."""
    try:
        wanted = uuid.UUID(image_id)
    except ValueError:
        wanted = None
    found = None
    if wanted is not None:
        found = await DraftRepository(session, user_id).image(wanted)
    if found is None:
        raise NotFoundError("No image with this id.", code="image_not_found")
    return found


async def create_draft(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: str,
    request_message_seq: int,
    source_message_seq: int,
    platform: str,
    topic: str,
    context: str | None,
    with_image: bool,
    text: str,
    hashtags: Sequence[str],
    image_id: uuid.UUID | None,
    writer: str,
    now: datetime,
    version: int = 1,
    parent_draft_id: uuid.UUID | None = None,
) -> tuple[PostDraft, PostDraftVersion]:
    """A new draft, pending. A draft that was pending in this session is superseded."""
    repo = DraftRepository(session, user_id)
    previous = await repo.pending(session_id, for_update=True)
    if previous is not None:
        previous.status = DraftStatus.SUPERSEDED
        previous.updated_at = now
        # The partial unique index allows one pending draft per session: write this first.
        await repo.save()
    draft = PostDraft(
        id=uuid.uuid4(),
        user_id=user_id,
        session_id=session_id,
        request_message_seq=request_message_seq,
        opened_message_seq=source_message_seq,
        parent_draft_id=parent_draft_id,
        platform=platform,
        topic=topic,
        context=context,
        with_image=with_image,
        status=DraftStatus.PENDING,
        current_version=version,
        created_at=now,
        updated_at=now,
    )
    await repo.add(draft)
    row = await _write_version(
        repo,
        draft,
        text=text,
        hashtags=hashtags,
        image_id=image_id,
        source_message_seq=source_message_seq,
        writer=writer,
        now=now,
    )
    return draft, row


async def add_version(
    *,
    session: AsyncSession,
    draft: PostDraft,
    text: str,
    hashtags: Sequence[str],
    image_id: uuid.UUID | None,
    source_message_seq: int,
    writer: str,
    now: datetime,
) -> PostDraftVersion:
    """The next version of a pending draft."""
    if draft.status != DraftStatus.PENDING:
        raise ValueError("only a pending draft gets new versions")
    draft.current_version += 1
    draft.updated_at = now
    return await _write_version(
        DraftRepository(session, draft.user_id),
        draft,
        text=text,
        hashtags=hashtags,
        image_id=image_id,
        source_message_seq=source_message_seq,
        writer=writer,
        now=now,
    )


async def _write_version(
    repo: DraftRepository,
    draft: PostDraft,
    *,
    text: str,
    hashtags: Sequence[str],
    image_id: uuid.UUID | None,
    source_message_seq: int,
    writer: str,
    now: datetime,
) -> PostDraftVersion:
    """Writes the draft's current version: what a new draft starts with, or a regenerated
    one adds."""
    row = PostDraftVersion(
        draft_id=draft.id,
        version=draft.current_version,
        user_id=draft.user_id,
        text=text,
        hashtags=list(hashtags),
        image_id=image_id,
        source_message_seq=source_message_seq,
        writer=writer,
        created_at=now,
    )
    await repo.add(row)
    return row


async def cancel_draft(*, session: AsyncSession, draft: PostDraft, now: datetime) -> None:
    draft.status = DraftStatus.CANCELLED
    draft.updated_at = now
    await DraftRepository(session, draft.user_id).save()


async def published_post_for_draft(
    *, session: AsyncSession, user_id: uuid.UUID, draft_id: uuid.UUID
) -> PublishedPost | None:
    return await DraftRepository(session, user_id).post_for(draft_id)


async def record_publication(
    *,
    session: AsyncSession,
    draft: PostDraft,
    version: PostDraftVersion,
    publisher: str,
    external_id: str | None,
    now: datetime,
) -> tuple[PublishedPost, bool]:
    """Marks the draft published and records the post. Returns (post, created).

    `published_post.draft_id` is unique: if the draft was published meanwhile, the
    existing post is returned and nothing new is written.
    """
    existing = await published_post_for_draft(
        session=session, user_id=draft.user_id, draft_id=draft.id
    )
    if existing is not None:
        return existing, False
    post = PublishedPost(
        id=post_id_for(draft.id),
        user_id=draft.user_id,
        draft_id=draft.id,
        session_id=draft.session_id,
        version=version.version,
        platform=draft.platform,
        text=version.text,
        hashtags=list(version.hashtags),
        image_id=version.image_id,
        publisher=publisher,
        external_id=external_id,
        published_at=now,
    )
    repo = DraftRepository(session, draft.user_id)
    try:
        await repo.add_post_once(post)
    except IntegrityError:
        existing = await published_post_for_draft(
            session=session, user_id=draft.user_id, draft_id=draft.id
        )
        if existing is None:
            raise
        return existing, False
    draft.status = DraftStatus.PUBLISHED
    draft.published_at = now
    draft.updated_at = now
    await repo.save()
    return post, True


# ---------------------------------------------------------------------------
# Reading: the session's drafts, the user's posts, the export
# ---------------------------------------------------------------------------


def post_out(post: PublishedPost) -> PublishedPostOut:
    return PublishedPostOut(
        id=post.id,
        draft_id=post.draft_id,
        session_id=post.session_id,
        version=post.version,
        platform=post.platform,
        text=post.text,
        hashtags=list(post.hashtags),
        image_id=post.image_id,
        image_url=image_url(post.image_id),
        publisher=post.publisher,
        external_id=post.external_id,
        published_at=post.published_at,
    )


async def list_drafts(
    *, session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> list[DraftOut]:
    """The conversation's drafts, oldest first, each with all its versions."""
    repo = DraftRepository(session, user_id)
    drafts = await repo.drafts_of(session_id)
    if not drafts:
        return []
    ids = [d.id for d in drafts]
    versions = await repo.versions_of(ids)
    posts = await repo.posts_of(ids)
    by_draft: dict[uuid.UUID, list[DraftVersionOut]] = {}
    for v in versions:
        by_draft.setdefault(v.draft_id, []).append(
            DraftVersionOut(
                version=v.version,
                text=v.text,
                hashtags=list(v.hashtags),
                image_id=v.image_id,
                image_url=image_url(v.image_id),
                source_message_seq=v.source_message_seq,
                writer=v.writer,
                created_at=v.created_at,
            )
        )
    post_by_draft = {p.draft_id: p for p in posts}
    out = []
    for d in drafts:
        post = post_by_draft.get(d.id)
        out.append(
            DraftOut(
                id=d.id,
                session_id=d.session_id,
                request_message_seq=d.request_message_seq,
                opened_message_seq=d.opened_message_seq,
                parent_draft_id=d.parent_draft_id,
                platform=d.platform,
                topic=d.topic,
                context=d.context,
                with_image=d.with_image,
                status=d.status,
                current_version=d.current_version,
                created_at=d.created_at,
                updated_at=d.updated_at,
                published_at=d.published_at,
                versions=by_draft.get(d.id, []),
                published_post=post_out(post) if post is not None else None,
            )
        )
    return out


async def export_drafts(
    session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> list[dict[str, Any]]:
    """The conversation's drafts as JSON-ready dicts (camelCase), for the export."""
    drafts = await list_drafts(session=session, user_id=user_id, session_id=session_id)
    return [d.model_dump(mode="json", by_alias=True) for d in drafts]


async def list_posts(
    *, session: AsyncSession, user_id: uuid.UUID, limit: int, cursor: str | None = None
) -> tuple[list[PublishedPostOut], str | None]:
    """The user's published posts, newest first, a page at a time (keyset)."""
    before = cursors.decode_time_id(cursor) if cursor else None
    rows = await DraftRepository(session, user_id).posts_page(limit=limit + 1, before=before)
    page = list(rows[:limit])
    next_cursor = (
        cursors.encode_time_id(page[-1].published_at, page[-1].id)
        if len(rows) > limit and page
        else None
    )
    return [post_out(p) for p in page], next_cursor
