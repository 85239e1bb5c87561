"""The SQL of history: a user's sessions filtered, searched and paged, bulk changes.

`HistoryRepository(session, owner_id)` is built for one owner: every statement names
`user_id = :owner` (through `app.core.tenancy`), and the titles, previews and matching
messages it returns are opened when encryption is on. The statement builders
(`filtered_sessions`, `after_cursor`, `history_order`) are shared with the exports, whose
repository extends them; each takes the owner.

Search is PostgreSQL full-text search with the 'simple' configuration over titles and
message content, by word prefix, plus substring terms for CJK and emoji (see
`app.conversations.search`). With ENCRYPTION_KEYS set, sealed titles and messages are
found through their blind index instead (`app.encryption.blind_index`), and plaintext
rows not yet sealed through the full-text indexes as before.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

from app.conversations import search
from app.conversations.models import ChatMessage, ChatSession, SessionStatus
from app.conversations.repository import matching_rows
from app.core.errors import InvalidInputError
from app.core.tenancy import owned, owned_by, owned_update
from app.encryption.blind_index import token_query
from app.encryption.crypto import Keyring, keyring_of
from app.encryption.sealed import open_column
from app.sharing.models import SharedLink
from app.turns.models import ChatTurn, TurnStatus

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
# A position in history order: (pinned, last_activity_at, id).
Position = tuple[bool, datetime, str]

_sessions = ChatSession.__table__  # type: ignore[attr-defined]
_messages = ChatMessage.__table__  # type: ignore[attr-defined]

# Which of the messages :seqs (one per session of :ids) lie on their session's active path.
# A session whose stored messages are all on the path (a single chain: as many messages as
# the head's depth) answers at once; any other is walked up from the head, stopping below
# the message (ancestors only get older), so the walk is as long as the path after it.
_ON_PATH = sa.text(
    """
    WITH RECURSIVE hit AS (
        SELECT s.id AS session_id, s.head_seq, q.seq AS match_seq,
               s.message_count = h.depth AS chain
        FROM unnest(CAST(:ids AS varchar[]), CAST(:seqs AS integer[])) AS q (session_id, seq)
        JOIN chat_session s ON s.id = q.session_id AND s.user_id = :user_id
        JOIN chat_message h ON h.session_id = s.id AND h.user_id = :user_id
                           AND h.seq = s.head_seq
    ),
    walk (session_id, seq, parent_seq, match_seq) AS (
        SELECT m.session_id, m.seq, m.parent_seq, hit.match_seq FROM hit
        JOIN chat_message m ON m.session_id = hit.session_id AND m.user_id = :user_id
                           AND m.seq = hit.head_seq
        WHERE NOT hit.chain AND m.seq >= hit.match_seq
        UNION ALL
        SELECT m.session_id, m.seq, m.parent_seq, w.match_seq FROM walk w
        JOIN chat_message m ON m.session_id = w.session_id AND m.user_id = :user_id
                           AND m.seq = w.parent_seq
        WHERE m.seq >= w.match_seq
    )
    SELECT session_id FROM hit WHERE chain
    UNION
    SELECT session_id FROM walk WHERE seq = match_seq
    """
)
_links = SharedLink.__table__  # type: ignore[attr-defined]
_turns = ChatTurn.__table__  # type: ignore[attr-defined]

# What opening a conversation says of its turns, in one statement: the turn generating on
# it, else the newest turn that failed to answer the head (a user message :head_seq, null
# without messages). The generating one is found by its unique partial index.
_TURN_COLUMNS = ", ".join(c.name for c in _turns.columns)
_HEAD_TURN = sa.select(ChatTurn).from_statement(
    sa.text(
        f"""
        SELECT {_TURN_COLUMNS} FROM (
            (SELECT {_TURN_COLUMNS}, 0 AS rank FROM chat_turn
             WHERE session_id = :session_id AND user_id = :user_id
               AND status = '{TurnStatus.GENERATING.value}')
            UNION ALL
            (SELECT {_TURN_COLUMNS}, 1 AS rank FROM chat_turn
             WHERE session_id = :session_id AND user_id = :user_id
               AND status = '{TurnStatus.FAILED.value}'
               AND user_seq = CAST(:head_seq AS integer)
             ORDER BY started_at DESC LIMIT 1)
        ) AS turn
        ORDER BY rank LIMIT 1
        """  # noqa: S608  (only the table's column names and statuses are formatted in)
    )
)

# PostgreSQL's SQL with `:name` parameters and no driver casts, for the prebuilt page.
_DIALECT = PGDialect(paramstyle="named")  # type: ignore[no-untyped-call]
_DIALECT._bind_typing_render_casts = False


def _status(value: SessionStatus) -> sa.ColumnElement[Any]:
    """A status written into the statement as a constant (the partial indexes name one)."""
    rendered = sa.literal(value.value, _sessions.c.status.type).compile(
        dialect=_DIALECT, compile_kwargs={"literal_binds": True}
    )
    return sa.literal_column(str(rendered), _sessions.c.status.type)


@dataclass(frozen=True)
class SessionFilter:
    """Which of a user's sessions: by status, search words and a last-activity date range."""

    status: StatusFilter = "all"
    q: str | None = None
    tag: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive


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
    # A temporary conversation is in no list, search or export of everything.
    conds: list[sa.ColumnElement[bool]] = [sa.not_(s.temporary)]
    if flt.status == "all":
        conds.append(s.status != _status(SessionStatus.TRASHED))
    elif flt.status == "trash":
        conds.append(s.status == _status(SessionStatus.TRASHED))
    else:
        conds.append(s.status == _status(SessionStatus(flt.status)))
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
                search.matches(terms, m.content, m.content_tsv, m.content_symbols)
            ),
        ]
        if keyring is not None:
            query = token_query(keyring, user_id, terms)
            found = matching_rows(query, user_id=user_id).subquery("blind")
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
    pinned: bool,
    last_activity_at: datetime | sa.BindParameter[Any],
    session_id: str | sa.BindParameter[Any],
) -> sa.ColumnElement[bool]:
    """Rows after a position in (pinned DESC, last_activity_at DESC, id ASC) order (the
    position's time and id, or parameters that stand for them)."""
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


_PAGE_COLUMNS = (
    "id",
    "title",
    "title_sealed",
    "key_id",
    "status",
    "created_at",
    "last_activity_at",
    "archived_at",
    "head_seq",
    "trashed_at",
    "purge_at",
    "pinned",
    "tags",
    "imported_from",
    "api_client",
    "model",
)


def _with_head_and_link(page: sa.Subquery, owner: Any) -> sa.Select[Any]:
    """The rows of `page` in history order, each with its head's depth (the active
    path's length), the start of the head (the preview) and its share link: one
    primary-key lookup and one unique-key lookup per row."""
    m = _messages.c
    link = _links.c
    return (
        sa.select(
            page,
            sa.func.coalesce(m.depth, sa.literal_column("0")).label("message_count"),
            sa.func.left(m.content, sa.literal_column(str(PREVIEW_CHARS * 3))).label("preview"),
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
                    owned_by(_messages, owner),
                ),
            ).outerjoin(_links, sa.and_(link.session_id == page.c.id, owned_by(_links, owner)))
        )
        .order_by(page.c.pinned.desc(), page.c.last_activity_at.desc(), page.c.id.asc())
    )


CursorKind = Literal["none", "pinned", "unpinned"]


@functools.cache
def _prebuilt_page(status: StatusFilter, tagged: bool, cursor: CursorKind) -> sa.TextClause:
    """The page of a list without search words or dates (the history as the web page reads
    it), built once per shape from the same builders and compiled to text: a Core
    construct built, coerced and keyed on every call cost more CPU than the database's
    work on the page. Parameters: `:owner`, `:limit` (the page plus one), with `tagged`
    `:tag` (a one-tag array), with a cursor `:at` and `:after_id`."""
    s = _sessions.c
    owner: Any = sa.bindparam("owner")  # the owner's id, given at each call
    extra: list[sa.ColumnElement[bool]] = []
    if tagged:
        extra.append(s.tags.contains(sa.cast(sa.bindparam("tag"), ARRAY(sa.String(32)))))
    if cursor != "none":
        extra.append(after_cursor(cursor == "pinned", sa.bindparam("at"), sa.bindparam("after_id")))
    page = (
        filtered_sessions(
            *(s[name] for name in _PAGE_COLUMNS),
            user_id=owner,
            flt=SessionFilter(status=status),
        )
        .where(*extra)
        .order_by(*history_order())
        .limit(sa.bindparam("limit"))
        .subquery("page")
    )
    compiled = _with_head_and_link(page, owner).compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    anonymous = [k for k, b in compiled.binds.items() if b.value is not None or b.unique]
    if anonymous:  # a Python value left in the construct would be a missing parameter
        raise ValueError(f"the prebuilt page holds values {anonymous}")
    return sa.text(str(compiled))


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
    if (
        normalize_query(flt.q) is None
        and among is None
        and flt.date_from is None
        and flt.date_to is None
    ):
        params: dict[str, Any] = {"owner": user_id, "limit": limit + 1}
        if flt.tag is not None:
            params["tag"] = [flt.tag]
        cursor: CursorKind = "none"
        if position is not None:
            pinned, params["at"], params["after_id"] = position
            cursor = "pinned" if pinned else "unpinned"
        stmt = _prebuilt_page(flt.status, flt.tag is not None, cursor)
        return (await session.execute(stmt, params)).all()
    s = _sessions.c
    extra = [after_cursor(*position)] if position else []
    if among is not None:
        extra.append(s.id == sa.any_(sa.cast(among, ARRAY(sa.String))))
    page = (
        filtered_sessions(
            *(s[name] for name in _PAGE_COLUMNS),
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
    return (await session.execute(_with_head_and_link(page, user_id))).all()


async def _first_matches(
    *, session: AsyncSession, user_id: uuid.UUID, terms: search.SearchTerms, ids: list[str]
) -> dict[str, tuple[int, str]]:
    """For each of the sessions `ids`, its first matching message (by seq) and its text,
    opened."""
    m = _messages.c
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
    return first


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
    query = token_query(keyring, user_id, terms)
    found = matching_rows(query, user_id=user_id, session_ids=ids).subquery()
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


# ------------------------------------------------------------------------- repository


class HistoryRepository:
    """One owner's history: every statement is scoped to `owner_id`."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def search_plan(self, q: str | None) -> SearchPlan:
        return await choose_search_plan(session=self.session, user_id=self.owner_id, q=q)

    async def looks_common(self, q: str) -> bool:
        return await _looks_common(session=self.session, user_id=self.owner_id, q=q)

    async def scan_window(
        self, flt: SessionFilter, position: Position | None
    ) -> tuple[list[str], bool]:
        return await _scan_window(
            session=self.session, user_id=self.owner_id, flt=flt, position=position
        )

    async def page(
        self,
        flt: SessionFilter,
        position: Position | None,
        limit: int,
        *,
        plan: SearchPlan = "set",
        among: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to limit + 1 sessions after `position`, each with its head's depth
        (`message_count`), its preview and its share link; `title` and `preview` opened."""
        rows = await _page(
            session=self.session,
            user_id=self.owner_id,
            flt=flt,
            position=position,
            limit=limit,
            plan=plan,
            among=among,
        )
        keyring = keyring_of(self.session)
        return [
            {
                **r._asdict(),
                "title": session_title(keyring, self.owner_id, r),
                "preview": open_column(
                    keyring,
                    ChatMessage,
                    "content",
                    plain=r.preview,
                    sealed=r.preview_sealed,
                    key_id=r.preview_key_id,
                    user_id=self.owner_id,
                    row=(r.id, r.head_seq),
                ),
            }
            for r in rows
        ]

    async def first_matches(
        self, terms: search.SearchTerms, ids: list[str]
    ) -> dict[str, tuple[int, str]]:
        """Each session's first message (by seq) that `terms` find, with its text opened."""
        return await _first_matches(
            session=self.session, user_id=self.owner_id, terms=terms, ids=ids
        )

    async def on_active_path(self, seqs: dict[str, int]) -> set[str]:
        """The ids of the sessions (of `seqs`: session id -> message seq) whose message lies
        on their active path, in one query for all of them."""
        if not seqs:
            return set()
        ids = list(seqs)
        rows = await self.session.execute(
            _ON_PATH, {"ids": ids, "seqs": [seqs[i] for i in ids], "user_id": self.owner_id}
        )
        return set(rows.scalars().all())

    async def head_turn(self, session_id: str, head_seq: int | None) -> ChatTurn | None:
        """The turn generating on the conversation; else the newest one that failed to
        answer its head `head_seq` (a user message still without a reply); else None."""
        rows = await self.session.execute(
            _HEAD_TURN, {"session_id": session_id, "user_id": self.owner_id, "head_seq": head_seq}
        )
        return rows.scalar_one_or_none()

    async def archive_all(self, now: datetime) -> list[str]:
        """Archives every active session of the owner (not the temporary ones, which the
        sweep deletes); returns their ids."""
        rows = await self.session.execute(
            owned_update(_sessions, self.owner_id)
            .where(_sessions.c.status == SessionStatus.ACTIVE, sa.not_(_sessions.c.temporary))
            .values(status=SessionStatus.ARCHIVED, archived_at=now)
            .returning(_sessions.c.id)
        )
        return list(rows.scalars().all())

    async def lock(self, ids: Sequence[str]) -> Sequence[ChatSession]:
        """The owner's sessions among `ids`, locked, in id order (a stable lock order)."""
        rows = await self.session.execute(
            owned(ChatSession, self.owner_id)
            .where(_sessions.c.id.in_(list(ids)))
            .order_by(_sessions.c.id)
            .with_for_update()
        )
        return rows.scalars().all()
