"""History: browse, search, rename, restore, archive and delete a user's conversations.

Every query here filters on `user_id` (through `app.core.tenancy`). Services flush; the
caller owns the transaction.

Pages use keyset pagination on (last_activity_at DESC, id ASC), the order of the index
`ix_chat_session_user_activity`. The cursor is the position of the last row returned, so a
page never repeats or skips a row because sessions were added after the first page was read
(new sessions sort before the cursor). A session that gets new activity moves to the top.

Search is PostgreSQL full-text search with the 'simple' configuration over titles and
message content, by word prefix, plus substring terms for CJK and emoji (see
`app.conversations.search`). With ENCRYPTION_KEYS set, sealed titles and messages are
found through their blind index instead (`app.conversations.blind_index`), and plaintext
rows not yet sealed through the full-text indexes as before.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations import blind_index, search, trash
from app.conversations.models import (
    AuditAction,
    ChatMessage,
    ChatSession,
    SessionStatus,
)
from app.conversations.service import archive_session, expires_at
from app.conversations.tags import TAGS_PER_CONVERSATION, normalize_tag
from app.core import cursors
from app.core.errors import InvalidInputError, NotFoundError
from app.core.tenancy import owned, owned_by, owned_update
from app.core.text import shorten
from app.core.validation import in_date_range, unstorable_reason
from app.encryption.crypto import Keyring, keyring_of
from app.encryption.sealed import open_column
from app.events.bus import EventBus, user_event
from app.history.schemas import SessionSummary, SnippetOut
from app.sharing.models import SharedLink

# "all" is everything but the trash; "trash" is only the trash.
StatusFilter = Literal["active", "archived", "all", "trash"]

PAGE_DEFAULT = 20
PAGE_MAX = 100
PREVIEW_CHARS = 140
SEARCH_MAX_CHARS = 200
# Search first scans the newest sessions (after the cursor) holding about this many
# messages, probing each one's messages in order; a word used often lately fills a page
# there. Otherwise the rest of the page comes from the GIN indexes (see `list_sessions`).
SEARCH_SCAN_MESSAGES = 5000
SEARCH_SCAN_MAX_SESSIONS = 500
# ... but only words the planner estimates this common (share of the user's messages or
# titles); rarer ones go straight to the GIN indexes. A wrong estimate costs one bounded
# scan, never a walk through every message.
SEARCH_SCAN_MIN_SHARE = 0.005
SEARCH_SCAN_MIN_TITLE_SHARE = 0.2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = "2"
# A position in history order: (pinned, last_activity_at, id).
Position = tuple[bool, datetime, str]

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]
_links = SharedLink.__table__  # type: ignore[attr-defined]


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


@dataclass(frozen=True)
class SessionFilter:
    """Which of a user's sessions: by status, search words and a last-activity date range."""

    status: StatusFilter = "all"
    q: str | None = None
    tag: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive


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


def normalize_query(q: str | None) -> str | None:
    if q is None:
        return None
    text = " ".join(q.split())
    if not text:
        return None
    if len(text) > SEARCH_MAX_CHARS:
        raise InvalidInputError(
            f"The search text is longer than {SEARCH_MAX_CHARS} characters.", code="query_too_long"
        )
    return text


SearchPlan = Literal["probe", "set"]


async def choose_search_plan(
    *, session: AsyncSession, user_id: uuid.UUID, q: str | None
) -> SearchPlan:
    """How to find every session matching `q` (an export walks them all).

    - "set": every matching message through the GIN index, then their sessions, sorted.
      Cost grows with the number of matching messages.
    - "probe": walk the user's sessions newest first and check each one's messages by
      primary key. Cost grows with the number of messages walked.

    "probe" only when the newest sessions are dense with matches (a page fills within a
    bounded scan); the planner's estimates are not consulted, so a rare or absent word is
    never searched by reading every message.
    """
    q = normalize_query(q)
    if q is None or not await _looks_common(session=session, user_id=user_id, q=q):
        return "set"
    window, _ = await _scan_window(
        session=session, user_id=user_id, flt=SessionFilter(q=q), position=None
    )
    found = await session.execute(
        filtered_sessions(_sessions.c.id, user_id=user_id, flt=SessionFilter(q=q), plan="probe")
        .where(_sessions.c.id == sa.any_(sa.cast(window, ARRAY(sa.String))))
        .limit(PAGE_DEFAULT + 1)
    )
    return "probe" if len(found.all()) > PAGE_DEFAULT else "set"


async def _looks_common(*, session: AsyncSession, user_id: uuid.UUID, q: str) -> bool:
    """Whether the planner's statistics put `q` among the user's common words."""
    if keyring_of(session) is not None:  # sealed text has no statistics: the set plan
        return False
    words = search.split_terms(q).words
    if words is None:  # substrings only: no statistics to ask, the set plan
        return False
    # Plan with the real values even when the driver reuses a prepared statement.
    await session.execute(
        sa.text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")
    )
    tsq = search.prefix_tsquery_sql(":q")
    # One EXPLAIN, four estimates: the branches of a UNION ALL are planned one by one.
    explain = sa.text(  # only constants are formatted in; values are bound parameters
        "EXPLAIN (FORMAT JSON) "  # noqa: S608
        f"SELECT 1 FROM chat_message WHERE user_id = :user_id AND content_tsv @@ {tsq} "
        "UNION ALL SELECT 1 FROM chat_message WHERE user_id = :user_id "
        f"UNION ALL SELECT 1 FROM chat_session WHERE user_id = :user_id AND title_tsv @@ {tsq} "
        "UNION ALL SELECT 1 FROM chat_session WHERE user_id = :user_id"
    )
    raw = (await session.execute(explain, {"user_id": user_id, "q": words})).scalar_one()
    plan = json.loads(raw) if isinstance(raw, str) else raw
    branches = [float(b["Plan Rows"]) for b in plan[0]["Plan"]["Plans"]]
    messages_hit, messages, titles_hit, sessions = branches
    return bool(
        (messages and messages_hit / messages >= SEARCH_SCAN_MIN_SHARE)
        or (sessions and titles_hit / sessions >= SEARCH_SCAN_MIN_TITLE_SHARE)
    )


async def _scan_window(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    flt: SessionFilter,
    position: Position | None,
) -> tuple[list[str], bool]:
    """The next sessions in history order holding about `SEARCH_SCAN_MESSAGES` messages
    (at least one session), and whether they are all the sessions left."""
    s = _sessions.c
    rows = (
        await session.execute(
            filtered_sessions(s.id, s.message_count, user_id=user_id, flt=replace(flt, q=None))
            .where(*([after_cursor(*position)] if position else []))
            .order_by(*history_order())
            .limit(SEARCH_SCAN_MAX_SESSIONS)
        )
    ).all()
    window: list[str] = []
    messages = 0
    for row in rows:
        if window and messages + row.message_count > SEARCH_SCAN_MESSAGES:
            return window, False
        window.append(row.id)
        messages += row.message_count
    return window, len(rows) < SEARCH_SCAN_MAX_SESSIONS


def filtered_sessions(
    *columns: Any,
    user_id: uuid.UUID,
    flt: SessionFilter,
    plan: SearchPlan = "set",
    keyring: Keyring | None = None,
) -> sa.Select[Any]:
    """SELECT columns FROM the user's sessions matching `flt`; shared by list and export.

    Order, cursor and limit are the caller's. With words to find, `plan` (from
    `choose_search_plan`) decides how message content is searched; titles are always
    searched too. With a `keyring`, sealed rows are searched through the blind index.
    """
    s = _sessions.c
    conds: list[sa.ColumnElement[bool]] = []
    if flt.status == "all":
        conds.append(s.status != SessionStatus.TRASHED)
    elif flt.status == "trash":
        conds.append(s.status == SessionStatus.TRASHED)
    else:
        conds.append(s.status == flt.status)
    if flt.tag is not None:
        conds.append(s.tags.contains(sa.cast([flt.tag], ARRAY(sa.String(32)))))
    if flt.date_from is not None:
        conds.append(s.last_activity_at >= datetime.combine(flt.date_from, time(), tzinfo=UTC))
    if flt.date_to is not None:
        end = datetime.combine(flt.date_to, time(), tzinfo=UTC) + timedelta(days=1)
        conds.append(s.last_activity_at < end)
    stmt = owned(_sessions, user_id, *columns)
    q = normalize_query(flt.q)
    if q is None:
        return stmt.where(*conds)
    terms = search.split_terms(q)
    m = _messages.c
    title_hit = search.matches(terms, s.title, s.title_tsv)
    if plan == "set":
        # Every matching session id, found through the two GIN indexes and computed once
        # (a MATERIALIZED CTE: never turned into a per-session check); the sessions are
        # then read by primary key and sorted.
        branches = [
            owned(_sessions, user_id, s.id.label("id")).where(title_hit),
            owned(_messages, user_id, m.session_id).where(
                search.matches(terms, m.content, m.content_tsv)
            ),
        ]
        if keyring is not None:
            query = blind_index.token_query(keyring, user_id, terms)
            found = blind_index.matching_rows(query, user_id=user_id).subquery("blind")
            branches.append(sa.select(found.c.session_id))
        matched = sa.union(*branches).cte("search_match").prefix_with("MATERIALIZED")
        conds.append(s.id.in_(sa.select(matched.c.id)))
        return stmt.where(*conds)
    # Probe: a correlated check per session, in history order. `OFFSET 0` keeps it a
    # per-row subplan (not one hashed set of all matches), and `|| ''::tsvector` keeps
    # it on the primary key (session_id, seq) instead of a GIN scan per session.
    probe = sa.exists(
        owned(_messages, user_id, sa.literal(1))
        .where(
            m.session_id == s.id,
            search.matches(
                terms, m.content, m.content_tsv.op("||")(sa.literal_column("''::tsvector"))
            ),
        )
        .offset(0)
    )
    conds.append(sa.or_(title_hit, probe))
    return stmt.where(*conds)


def after_cursor(
    pinned: bool, last_activity_at: datetime, session_id: str
) -> sa.ColumnElement[bool]:
    """Rows after a position in (pinned DESC, last_activity_at DESC, id ASC) order."""
    s = _sessions.c
    same_pin = sa.and_(
        s.pinned == pinned,
        s.last_activity_at <= last_activity_at,
        sa.or_(
            s.last_activity_at < last_activity_at,
            s.id > session_id,
        ),
    )
    # After the last pinned one come all the unpinned ones.
    return sa.or_(same_pin, s.pinned.is_(False)) if pinned else same_pin


def history_order() -> list[sa.ColumnElement[Any]]:
    s = _sessions.c
    return [s.pinned.desc(), s.last_activity_at.desc(), s.id.asc()]


def session_title(keyring: Keyring | None, user_id: uuid.UUID, row: Any) -> str:
    """The title of a Core row of chat_session that selected title, title_sealed, key_id."""
    title: str = open_column(
        keyring,
        ChatSession,
        "title",
        plain=row.title,
        sealed=row.title_sealed,
        key_id=row.key_id,
        user_id=user_id,
        row=(row.id,),
    )
    return title


def make_preview(text: str | None) -> str:
    if not text:
        return ""
    return shorten(" ".join(text.split()), PREVIEW_CHARS)


async def _page(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    flt: SessionFilter,
    position: Position | None,
    limit: int,
    plan: SearchPlan = "set",
    among: list[str] | None = None,
) -> Sequence[sa.Row[Any]]:
    """Up to limit + 1 rows after `position`, with the preview; `among` narrows the ids."""
    s = _sessions.c
    extra = [after_cursor(*position)] if position else []
    if among is not None:
        extra.append(s.id == sa.any_(sa.cast(among, ARRAY(sa.String))))
    page = (
        filtered_sessions(
            s.id,
            s.title,
            s.title_sealed,
            s.key_id,
            s.status,
            s.created_at,
            s.last_activity_at,
            s.archived_at,
            s.head_seq,
            s.trashed_at,
            s.purge_at,
            s.pinned,
            s.tags,
            s.imported_from,
            user_id=user_id,
            flt=flt,
            plan=plan,
            keyring=keyring_of(session),
        )
        .where(*extra)
        .order_by(*history_order())
        .limit(limit + 1)
        .subquery("page")
    )
    m = _messages.c
    link = _links.c
    # The preview is the head (the active branch's last message), whose depth is the
    # active path's length: one primary-key lookup per row of the page; the share link one
    # unique-key lookup.
    stmt = (
        sa.select(
            page,
            sa.func.coalesce(m.depth, 0).label("message_count"),
            sa.func.left(m.content, PREVIEW_CHARS * 3).label("preview"),
            link.token.label("share_token"),
            link.expires_at.label("share_expires_at"),
            m.content_sealed.label("preview_sealed"),
            m.key_id.label("preview_key_id"),
        )
        .select_from(
            page.outerjoin(
                _messages,
                sa.and_(
                    m.session_id == page.c.id,
                    m.seq == page.c.head_seq,
                    owned_by(_messages, user_id),
                ),
            ).outerjoin(_links, sa.and_(link.session_id == page.c.id, owned_by(_links, user_id)))
        )
        .order_by(page.c.pinned.desc(), page.c.last_activity_at.desc(), page.c.id.asc())
    )
    return (await session.execute(stmt)).all()


async def _with_matches(
    *, session: AsyncSession, user_id: uuid.UUID, q: str, items: list[SessionSummary]
) -> list[SessionSummary]:
    """Each found session with its first matching message (by seq) and a snippet of it;
    a session found by its title alone gets a snippet of the title."""
    terms = search.split_terms(q)
    m = _messages.c
    ids = [item.id for item in items]
    rows = await session.execute(
        owned(_messages, user_id, m.session_id, m.seq, m.content)
        .where(
            m.session_id == sa.any_(sa.cast(ids, ARRAY(sa.String))),
            search.matches(
                terms, m.content, m.content_tsv.op("||")(sa.literal_column("''::tsvector"))
            ),
        )
        .distinct(m.session_id)
        .order_by(m.session_id, m.seq)
    )
    first = {r.session_id: (r.seq, r.content) for r in rows}
    keyring = keyring_of(session)
    if keyring is not None:
        first = await _first_sealed_matches(
            session=session, keyring=keyring, user_id=user_id, terms=terms, ids=ids, first=first
        )
    out = []
    for item in items:
        seq, text = first.get(item.id, (None, item.title))
        found = search.snippet(text, terms) or search.snippet(item.title, terms)
        snippet = SnippetOut.model_validate(found) if found is not None else None
        out.append(item.model_copy(update={"match_seq": seq, "snippet": snippet}))
    return out


async def _first_sealed_matches(
    *,
    session: AsyncSession,
    keyring: Keyring,
    user_id: uuid.UUID,
    terms: search.SearchTerms,
    ids: list[str],
    first: dict[str, tuple[int, str]],
) -> dict[str, tuple[int, str]]:
    """`first`, with the blind index's earlier matches among sealed messages, opened (the
    snippet is built from the plaintext here, never in the database)."""
    query = blind_index.token_query(keyring, user_id, terms)
    found = blind_index.matching_rows(query, user_id=user_id, session_ids=ids).subquery()
    hits = await session.execute(
        sa.select(found.c.session_id, sa.func.min(found.c.message_seq))
        .where(found.c.message_seq > 0)
        .group_by(found.c.session_id)
    )
    wanted = {sid: seq for sid, seq in hits.all() if sid not in first or seq < first[sid][0]}
    if not wanted:
        return first
    m = _messages.c
    pairs = sa.values(
        sa.column("sid", sa.String), sa.column("seq", sa.Integer), name="wanted"
    ).data(list(wanted.items()))
    rows = await session.execute(
        owned(_messages, user_id, m.session_id, m.seq, m.content, m.content_sealed, m.key_id).join(
            pairs, sa.and_(m.session_id == pairs.c.sid, m.seq == pairs.c.seq)
        )
    )
    merged = dict(first)
    for r in rows:
        text = open_column(
            keyring,
            ChatMessage,
            "content",
            plain=r.content,
            sealed=r.content_sealed,
            key_id=r.key_id,
            user_id=user_id,
            row=(r.session_id, r.seq),
        )
        merged[r.session_id] = (r.seq, text)
    return merged


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
    if q is None or not await _looks_common(session=session, user_id=user_id, q=q):
        rows = await _page(
            session=session, user_id=user_id, flt=flt, position=position, limit=limit
        )
    else:
        # Common words: a bounded scan of the next sessions finds a page when they are
        # common lately; otherwise the GIN indexes give every match. Rare or absent words
        # go to the GIN indexes at once (above). No search walks all the user's messages.
        window, to_the_end = await _scan_window(
            session=session, user_id=user_id, flt=flt, position=position
        )
        rows = await _page(
            session=session,
            user_id=user_id,
            flt=flt,
            position=position,
            limit=limit,
            plan="probe",
            among=window,
        )
        if len(rows) <= limit and not to_the_end:
            rows = await _page(
                session=session, user_id=user_id, flt=flt, position=position, limit=limit
            )
    keyring = keyring_of(session)
    items = [
        SessionSummary(
            id=r.id,
            title=session_title(keyring, user_id, r),
            status=r.status,
            created_at=r.created_at,
            last_activity_at=r.last_activity_at,
            archived_at=r.archived_at,
            message_count=r.message_count,
            preview=make_preview(
                open_column(
                    keyring,
                    ChatMessage,
                    "content",
                    plain=r.preview,
                    sealed=r.preview_sealed,
                    key_id=r.preview_key_id,
                    user_id=user_id,
                    row=(r.id, r.head_seq),
                )
            ),
            trashed_at=r.trashed_at,
            purge_at=r.purge_at,
            pinned=r.pinned,
            tags=list(r.tags),
            imported_from=r.imported_from,
            expires_at=(
                expires_at(
                    status=r.status, last_activity_at=r.last_activity_at, ttl_seconds=ttl_seconds
                )
                if ttl_seconds is not None
                else None
            ),
        )
        for r in rows[:limit]
    ]
    shares = {
        r.id: ShareRef(token=r.share_token, expires_at=r.share_expires_at)
        for r in rows[:limit]
        if r.share_token is not None
    }
    if q is not None and items:
        items = await _with_matches(session=session, user_id=user_id, q=q, items=items)
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last.pinned, last.last_activity_at, last.id)
    return SessionListPage(items=items, next_cursor=next_cursor, shares=shares)


# ---------------------------------------------------------------------------- changes


def _changed(session: AsyncSession, user_id: uuid.UUID, session_id: str, change: str) -> None:
    """Every device of the owner hears of it once the change commits."""
    EventBus.stage(session, user_event(user_id, "session", sessionId=session_id, change=change))


async def rename_session(*, session: AsyncSession, chat_session: ChatSession, title: str) -> None:
    chat_session.title = title
    await session.flush()
    _changed(session, chat_session.user_id, chat_session.id, "renamed")


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
        _changed(session, chat_session.user_id, chat_session.id, "updated")


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
        _changed(session, chat_session.user_id, chat_session.id, "restored")


async def archive_now(*, session: AsyncSession, chat_session: ChatSession, now: datetime) -> None:
    """Archive an active session now; an archived one keeps its archived_at."""
    if chat_session.status == SessionStatus.ACTIVE:
        await archive_session(chat_session=chat_session, now=now)
        await session.flush()
        _changed(session, chat_session.user_id, chat_session.id, "archived")


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
    (messages, drafts and images)."""
    if permanent:
        await trash.remove(
            session=session,
            ids=[chat_session.id],
            owner_id=chat_session.user_id,
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
    archived = (
        (
            await session.execute(
                owned_update(_sessions, user_id)
                .where(_sessions.c.status == SessionStatus.ACTIVE)
                .values(status=SessionStatus.ARCHIVED, archived_at=now)
                .returning(_sessions.c.id)
            )
        )
        .scalars()
        .all()
    )
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
    found = {c.id: c for c in await _lock_owned(session=session, user_id=user_id, ids=wanted)}
    for chat_session in found.values():
        await restore_session(session=session, chat_session=chat_session, now=now, actor=actor)
    restored = [i for i in wanted if i in found]
    missing = [i for i in wanted if i not in found]
    return restored, missing


async def _lock_owned(
    *, session: AsyncSession, user_id: uuid.UUID, ids: Sequence[str]
) -> Sequence[ChatSession]:
    """The user's sessions among `ids`, locked, in id order (a stable lock order)."""
    rows = await session.execute(
        owned(ChatSession, user_id)
        .where(_sessions.c.id.in_(list(ids)))
        .order_by(_sessions.c.id)
        .with_for_update()
    )
    return rows.scalars().all()


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
    found = {c.id: c for c in await _lock_owned(session=session, user_id=user_id, ids=wanted)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFoundError(
            "Some of these conversations do not exist; nothing was changed.",
            code="session_not_found",
            extra={"notFound": missing},
        )
    if action == "delete":
        await trash.remove(
            session=session,
            ids=wanted,
            owner_id=user_id,
            now=now,
            actor=actor,
            action=AuditAction.DELETE,
        )
        return wanted
    for chat_session in found.values():
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
