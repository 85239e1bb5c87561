"""History: browse, search, rename, restore, archive and delete a user's conversations.

Every statement is in `app.history.repository` (`HistoryRepository`, built for one owner).
Services flush; the caller owns the transaction.

Pages use keyset pagination on (last_activity_at DESC, id ASC), the order of the index
`ix_chat_session_user_activity`. The cursor is the position of the last row returned, so a
page never repeats or skips a row because sessions were added after the first page was read
(new sessions sort before the cursor). A session that gets new activity moves to the top.

Search: see `app.history.repository`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations import search, trash
from app.conversations.models import AuditAction, ChatSession, SessionStatus
from app.conversations.repository import ConversationRepository
from app.conversations.service import archive_session, expires_at
from app.conversations.tags import TAGS_PER_CONVERSATION, normalize_tag
from app.core import cursors
from app.core.errors import InvalidInputError, NotFoundError
from app.core.text import shorten
from app.core.validation import in_date_range, unstorable_reason
from app.events.bus import EventBus, user_event
from app.history.repository import (
    PAGE_DEFAULT,
    PAGE_MAX,
    PREVIEW_CHARS,
    SEARCH_MAX_CHARS,
    HistoryRepository,
    Position,
    SearchPlan,
    SessionFilter,
    StatusFilter,
    after_cursor,
    choose_search_plan,
    filtered_sessions,
    history_order,
    normalize_query,
    session_title,
)
from app.history.schemas import SessionSummary, SnippetOut

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = "2"


@dataclass(frozen=True)
class ShareRef:
    """A listed conversation's share link (the caller tells live from expired by its clock
    and makes the URL from its own base)."""

    token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class SessionListPage:
    items: list[SessionSummary]
    next_cursor: str | None
    shares: dict[str, ShareRef] = field(default_factory=dict)  # by session id


# ------------------------------------------------------------------------------ cursor


def encode_cursor(pinned: bool, last_activity_at: datetime, session_id: str) -> str:
    """An opaque, url-safe position: the sort key of the last row of a page."""
    micros = (last_activity_at - _EPOCH) // timedelta(microseconds=1)
    return cursors.encode(f"{_CURSOR_VERSION}:{int(pinned)}:{micros}:{session_id}")


def decode_cursor(cursor: str) -> Position:
    problem = InvalidInputError(
        "The cursor is malformed; pass back the nextCursor of a previous page.",
        code="invalid_cursor",
    )
    try:
        raw = cursors.decode(cursor)
    except cursors.CursorError:
        raise problem from None
    version, _, rest = raw.partition(":")
    pinned_text = "0"
    if version == _CURSOR_VERSION:
        pinned_text, _, rest = rest.partition(":")
    elif version != "1":  # before pins: every position was unpinned
        raise problem
    micros_text, _, session_id = rest.partition(":")
    if pinned_text not in ("0", "1") or not session_id or not micros_text.lstrip("-").isdigit():
        raise problem
    if len(micros_text) > 20 or unstorable_reason(session_id) is not None:
        raise problem
    try:
        at = in_date_range(_EPOCH + timedelta(microseconds=int(micros_text)))
    except (OverflowError, ValueError):
        raise problem from None
    return pinned_text == "1", at, session_id


# ----------------------------------------------------------------------------- queries


def make_preview(text: str | None) -> str:
    if not text:
        return ""
    return shorten(" ".join(text.split()), PREVIEW_CHARS)


async def _with_matches(
    *, repo: HistoryRepository, q: str, items: list[SessionSummary]
) -> list[SessionSummary]:
    """Each found session with its first matching message (by seq) and a snippet of it;
    a session found by its title alone gets a snippet of the title."""
    terms = search.split_terms(q)
    first = await repo.first_matches(terms, [item.id for item in items])
    on_path = await repo.on_active_path({sid: seq for sid, (seq, _) in first.items()})
    out = []
    for item in items:
        seq, text = first.get(item.id, (None, item.title))
        found = search.snippet(text, terms) or search.snippet(item.title, terms)
        snippet = SnippetOut.model_validate(found) if found is not None else None
        update = {
            "match_seq": seq,
            "match_on_path": None if seq is None else item.id in on_path,
            "snippet": snippet,
        }
        out.append(item.model_copy(update=update))
    return out


async def list_sessions(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    status: StatusFilter = "all",
    q: str | None = None,
    tag: str | None = None,
    limit: int = PAGE_DEFAULT,
    cursor: str | None = None,
    ttl_seconds: int | None = None,
) -> SessionListPage:
    """One page of the user's sessions, pinned first, then newest activity first. With
    `ttl_seconds`, each active one says when it expires."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInputError(f"limit must be between 1 and {PAGE_MAX}.", code="invalid_limit")
    position = decode_cursor(cursor) if cursor else None
    flt = SessionFilter(status=status, q=q, tag=normalize_tag(tag) if tag is not None else None)
    q = normalize_query(flt.q)
    repo = HistoryRepository(session, user_id)
    if q is None or not await repo.looks_common(q):
        rows = await repo.page(flt, position, limit)
    else:
        # Common words: a bounded scan of the next sessions finds a page when they are
        # common lately; otherwise the GIN indexes give every match. Rare or absent words
        # go to the GIN indexes at once (above). No search walks all the user's messages.
        window, to_the_end = await repo.scan_window(flt, position)
        rows = await repo.page(flt, position, limit, plan="probe", among=window)
        if len(rows) <= limit and not to_the_end:
            rows = await repo.page(flt, position, limit)
    items = [
        SessionSummary(
            id=r["id"],
            title=r["title"],
            status=r["status"],
            created_at=r["created_at"],
            last_activity_at=r["last_activity_at"],
            archived_at=r["archived_at"],
            message_count=r["message_count"],
            preview=make_preview(r["preview"]),
            trashed_at=r["trashed_at"],
            purge_at=r["purge_at"],
            pinned=r["pinned"],
            tags=list(r["tags"]),
            imported_from=r["imported_from"],
            api_client=r["api_client"],
            model=r["model"],
            expires_at=(
                expires_at(
                    status=r["status"],
                    last_activity_at=r["last_activity_at"],
                    ttl_seconds=ttl_seconds,
                )
                if ttl_seconds is not None
                else None
            ),
        )
        for r in rows[:limit]
    ]
    shares = {
        r["id"]: ShareRef(token=r["share_token"], expires_at=r["share_expires_at"])
        for r in rows[:limit]
        if r["share_token"] is not None
    }
    if q is not None and items:
        items = await _with_matches(repo=repo, q=q, items=items)
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last.pinned, last.last_activity_at, last.id)
    return SessionListPage(items=items, next_cursor=next_cursor, shares=shares)


# ---------------------------------------------------------------------------- changes


def _changed(session: AsyncSession, user_id: uuid.UUID, session_id: str, change: str) -> None:
    """Every device of the owner hears of it once the change commits."""
    EventBus.stage(session, user_event(user_id, "session", sessionId=session_id, change=change))


def _session_changed(session: AsyncSession, chat_session: ChatSession, change: str) -> None:
    """As `_changed`; a temporary conversation's changes reach no other device."""
    if not chat_session.temporary:
        _changed(session, chat_session.user_id, chat_session.id, change)


async def rename_session(*, session: AsyncSession, chat_session: ChatSession, title: str) -> None:
    chat_session.title = title
    await session.flush()
    _session_changed(session, chat_session, "renamed")


async def update_session(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    title: str | None = None,
    pinned: bool | None = None,
    tags: list[str] | None = None,
    model: str | None = None,
) -> None:
    """Renames, pins or unpins, replaces the tags, and switches the model; each only when
    given (the caller checked that `model` is one of the assistant's)."""
    if title is not None and title != chat_session.title:
        await rename_session(session=session, chat_session=chat_session, title=title)
    changed = False
    if pinned is not None and pinned != chat_session.pinned:
        chat_session.pinned = pinned
        changed = True
    if tags is not None and tags != list(chat_session.tags):
        chat_session.tags = tags
        changed = True
    if model is not None and model != chat_session.model:
        chat_session.model = model
        changed = True
    if changed:
        await session.flush()
        _session_changed(session, chat_session, "updated")


async def restore_session(
    *, session: AsyncSession, chat_session: ChatSession, now: datetime, actor: trash.Actor
) -> None:
    """A trashed conversation goes back to the status it had; an archived one becomes
    active again. Everything stays intact; active stays as it is."""
    if await trash.untrash(session=session, chat_session=chat_session, now=now, actor=actor):
        return
    if chat_session.status == SessionStatus.ARCHIVED:
        chat_session.status = SessionStatus.ACTIVE
        chat_session.archived_at = None
        chat_session.last_activity_at = now
        await session.flush()
        _session_changed(session, chat_session, "restored")


async def archive_now(*, session: AsyncSession, chat_session: ChatSession, now: datetime) -> None:
    """Archive an active session now; an archived one keeps its archived_at."""
    if chat_session.status == SessionStatus.ACTIVE:
        await archive_session(chat_session=chat_session, now=now)
        await session.flush()
        _session_changed(session, chat_session, "archived")


async def delete_session(
    *,
    session: AsyncSession,
    chat_session: ChatSession,
    now: datetime,
    retention_days: int,
    actor: trash.Actor,
    permanent: bool = False,
) -> None:
    """Moves the user's conversation to the trash, or with `permanent` deletes it for good
    (messages, drafts and images). A temporary conversation never goes to the trash: it is
    deleted for good at once, leaving no audit row (which would keep its title) and no
    event for other devices."""
    if chat_session.temporary:
        await ConversationRepository(session, chat_session.user_id).delete([chat_session.id])
        return
    if permanent:
        await trash.delete_conversations(
            session=session,
            repository=ConversationRepository(session, chat_session.user_id),
            ids=[chat_session.id],
            now=now,
            actor=actor,
            action=AuditAction.DELETE,
        )
        return
    await trash.trash(
        session=session,
        chat_session=chat_session,
        now=now,
        retention_days=retention_days,
        actor=actor,
    )


async def archive_all(*, session: AsyncSession, user_id: uuid.UUID, now: datetime) -> int:
    """Archives every active session of the user; returns how many."""
    archived = await HistoryRepository(session, user_id).archive_all(now)
    for session_id in archived:
        _changed(session, user_id, session_id, "archived")
    return len(archived)


async def restore_many(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    ids: Sequence[str],
    now: datetime,
    actor: trash.Actor,
) -> tuple[list[str], list[str]]:
    """Restores the named sessions of the user (from the archive or the trash). Returns
    (restored, not found), in the order given, without repeats; an already active session
    counts as restored."""
    wanted = list(dict.fromkeys(ids))
    found = {c.id: c for c in await HistoryRepository(session, user_id).lock(wanted)}
    for chat_session in found.values():
        await restore_session(session=session, chat_session=chat_session, now=now, actor=actor)
    restored = [i for i in wanted if i in found]
    missing = [i for i in wanted if i not in found]
    return restored, missing


BulkAction = Literal["archive", "restore", "trash", "delete", "tag", "untag"]


async def bulk_act(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    ids: Sequence[str],
    action: BulkAction,
    now: datetime,
    retention_days: int,
    actor: trash.Actor,
    tags: Sequence[str] = (),
) -> list[str]:
    """One action over several of the user's conversations, all or nothing: if any id is
    not the user's, or a conversation would get too many tags, nothing changes."""
    wanted = list(dict.fromkeys(ids))
    found = {c.id: c for c in await HistoryRepository(session, user_id).lock(wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFoundError(
            "Some of these conversations do not exist; nothing was changed.",
            code="session_not_found",
            extra={"notFound": missing},
        )
    kept = list(found.values())
    if action in ("trash", "delete"):
        # As `delete_session`: a temporary conversation never goes to the trash and leaves
        # no audit row; it is deleted for good at once.
        temporary = [c.id for c in kept if c.temporary]
        if temporary:
            await ConversationRepository(session, user_id).delete(temporary)
            kept = [c for c in kept if not c.temporary]
    if action == "delete":
        await trash.delete_conversations(
            session=session,
            repository=ConversationRepository(session, user_id),
            ids=[c.id for c in kept],
            now=now,
            actor=actor,
            action=AuditAction.DELETE,
        )
        return wanted
    for chat_session in kept:
        if action in ("tag", "untag"):
            current = list(chat_session.tags)
            if action == "tag":
                wanted_tags = list(dict.fromkeys([*current, *tags]))
            else:
                wanted_tags = [t for t in current if t not in tags]
            if len(wanted_tags) > TAGS_PER_CONVERSATION:
                raise InvalidInputError(
                    f"A conversation has at most {TAGS_PER_CONVERSATION} tags; nothing was "
                    "changed.",
                    code="invalid_tag",
                    extra={"sessionId": chat_session.id},
                )
            await update_session(session=session, chat_session=chat_session, tags=wanted_tags)
        elif action == "archive":
            await archive_now(session=session, chat_session=chat_session, now=now)
        elif action == "restore":
            await restore_session(session=session, chat_session=chat_session, now=now, actor=actor)
        else:
            await trash.trash(
                session=session,
                chat_session=chat_session,
                now=now,
                retention_days=retention_days,
                actor=actor,
            )
    return wanted


# The filters, limits and statement builders live with the SQL; they are named here too
# for the routes and services that read history through this module.
__all__ = [
    "PAGE_DEFAULT",
    "PAGE_MAX",
    "SEARCH_MAX_CHARS",
    "BulkAction",
    "Position",
    "SearchPlan",
    "SessionFilter",
    "SessionListPage",
    "ShareRef",
    "StatusFilter",
    "after_cursor",
    "archive_all",
    "archive_now",
    "bulk_act",
    "choose_search_plan",
    "decode_cursor",
    "delete_session",
    "encode_cursor",
    "filtered_sessions",
    "history_order",
    "list_sessions",
    "make_preview",
    "normalize_query",
    "rename_session",
    "restore_many",
    "restore_session",
    "session_title",
    "update_session",
]
