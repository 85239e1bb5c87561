"""The turn's SQL, and the only place it is written.

`TurnRepository(db, user_id)` runs a turn's statements for one owner: every statement it
runs names `user_id` (`app.core.tenancy`'s rule), and every message it reads comes back
opened, every message it writes goes in sealed with its blind-index row beside it, when
ENCRYPTION_KEYS is set (`app.encryption`, the ORM's own rule for these tables).
`TurnOperatorRepository(db)` holds the statements that act on turns across owners: the
checkpoint of every turn generating in this process, and the stale sweep.

A chat turn runs these statements on every message, so two costs are kept out:
- round trips: the ORM's unit of work sends one statement per table (session, message,
  turn); these write all of a step's rows in one statement with data-modifying CTEs
  (foreign keys are checked at the end of the statement, so a message may name the
  session inserted beside it);
- building statements: a Core construct is built, coerced and given a cache key on every
  call, which costs more CPU than the database's work on these rows.

So the statements are built here once, at import, with SQLAlchemy Core from the tables'
metadata (`ChatSession.__table__`, ...), compiled once for PostgreSQL, and kept as text
(`app.core.prebuilt`); they run on the session's Core connection, without the ORM
session's per-statement work.
An INSERT names every column of its table: what the turn gives, else the column's own
default (server default, or the model's scalar default), else NULL; a column with neither
default nor value refuses the import. Statuses and roles come from the models' enums.
`tests/turns/test_repository.py` holds every INSERT here to its table's columns.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.assistant.base import Usage
from app.conversations.models import (
    TITLE_SEQ,
    ChatMessage,
    ChatSession,
    MessageRole,
    SessionStatus,
)
from app.conversations.repository import open_message, sealed_content, sealed_title
from app.conversations.repository import upsert_search_tokens as upsert_tokens
from app.conversations.service import ContextLimits, FittedPath, fit_path
from app.core.prebuilt import DIALECT, compiled, execute
from app.core.tenancy import owned, owned_update
from app.encryption.blind_index import token_row
from app.encryption.crypto import keyring_of
from app.events.bus import CHANNEL
from app.turns.models import ChatTurn, TurnStatus

# ----------------------------------------------------------------- building statements

_SESSION: sa.Table = ChatSession.__table__  # type: ignore[attr-defined]
_MESSAGE: sa.Table = ChatMessage.__table__  # type: ignore[attr-defined]
_TURN: sa.Table = ChatTurn.__table__  # type: ignore[attr-defined]


def _p(name: str) -> sa.BindParameter[Any]:
    """A named parameter of a prebuilt statement."""
    return sa.bindparam(name)


def _int(name: str) -> sa.Cast[Any]:
    """A parameter used where PostgreSQL cannot infer its type (or infers two)."""
    return sa.cast(sa.bindparam(name), sa.Integer)


def _constant(value: Any, type_: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    """`value` written into the statement as a SQL literal of `type_`."""
    rendered = sa.literal(value, type_).compile(
        dialect=DIALECT, compile_kwargs={"literal_binds": True}
    )
    return sa.literal_column(str(rendered), type_)


def _value(column: sa.Column[Any], value: Any) -> sa.ColumnElement[Any]:
    return _constant(value.value if hasattr(value, "value") else value, column.type)


ONE: sa.ColumnClause[Any] = sa.literal_column("1")
ZERO: sa.ColumnClause[Any] = sa.literal_column("0")


def _default(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """What an INSERT that does not set `column` writes: its server default, its model's
    scalar default, or NULL; a column with none refuses to be left out."""
    if column.server_default is not None:
        arg = column.server_default.arg  # type: ignore[attr-defined]
        return arg if isinstance(arg, sa.ColumnElement) else sa.literal_column(str(arg))
    default = column.default
    if default is not None and default.is_scalar:
        return _value(column, default.arg)  # type: ignore[attr-defined]
    if default is None and column.nullable:
        return sa.null()
    raise LookupError(
        f"{column.table.name}.{column.name} has no value and no default a prebuilt "
        "INSERT can write: give it one"
    )


def full_row(table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """Every stored column of `table`: `values`, else the column's default."""
    unknown = set(values) - {c.name for c in table.columns}
    if unknown:
        raise LookupError(f"{table.name} has no column {sorted(unknown)}")
    return {
        c.name: values[c.name] if c.name in values else _default(c)
        for c in table.columns
        if c.computed is None
    }


def _notified() -> sa.CTE:
    """The events that the PostgreSQL bus would otherwise send in a statement of their
    own before the commit. A SELECT in a WITH runs only when referenced, hence the
    RETURNING that counts it."""
    payload = sa.func.unnest(sa.cast(_p("payloads"), ARRAY(sa.Text))).column_valued("p")
    return sa.select(sa.func.pg_notify(_p("channel"), payload)).cte("notified")


def _count(cte: sa.CTE) -> sa.Label[Any]:
    return sa.select(sa.func.count()).select_from(cte).scalar_subquery().label("notified")


def _owner(table: sa.FromClause, session_key: str = "session_id") -> list[Any]:
    """The conversation and owner a statement reads or writes (`:session_id`, `:user_id`)."""
    return [table.c[session_key] == _p("session_id"), table.c.user_id == _p("user_id")]


_GENERATING = _value(_TURN.c.status, TurnStatus.GENERATING)
_ASSISTANT = _value(_MESSAGE.c.role, MessageRole.ASSISTANT)


def _depth_below(parent: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """1 + the depth of the message `parent` (0 when there is none)."""
    m = _MESSAGE.alias("parent")
    depth = (
        sa.select(m.c.depth)
        .where(
            m.c.session_id == sa.cast(_p("session_id"), sa.String),
            m.c.user_id == _p("user_id"),
            m.c.seq == parent,
        )
        .scalar_subquery()
    )
    return sa.func.coalesce(depth, ZERO) + ONE


def _build_locked_session() -> sa.TextClause:
    s = _SESSION
    stmt = (
        sa.select(
            s.c.status,
            s.c.last_activity_at,
            s.c.message_count,
            s.c.head_seq,
            s.c.model,
            s.c.temporary,
        )
        .where(*_owner(s, "id"))
        .with_for_update()
    )
    return compiled(stmt)


def _build_busy_turn_and_context() -> sa.TextClause:
    """Once the lock is held, in a statement of its own (READ COMMITTED gives it a snapshot
    that sees whatever the lock's previous holder committed): the turn generating on the
    session, if any, and the assistant's context: the path from the new message's parent
    up through its parents, newest first, read by one recursive query that stops after
    :limit messages (CONTEXT_MAX_MESSAGES), however long the conversation or wide its tree.

    Where the path starts depends on what the turn does (`:target_seq` null: a new message
    after the head; with `:regenerate` false: an edit of the user message `:target_seq`,
    which gets that message's parent; with `:regenerate` true: a new reply to the user
    message `:target_seq` is, or answers). The target's row comes back for the service to
    check (a missing target, or one of the wrong role, writes nothing)."""
    m = _MESSAGE.alias("m")
    target_seq = _int("target_seq")
    regenerate = sa.cast(_p("regenerate"), sa.Boolean)
    target = (
        sa.select(m.c.seq, m.c.role, m.c.parent_seq)
        .where(*_owner(m), m.c.seq == target_seq)
        .cte("target")
    )
    asked_seq = sa.select(
        sa.case((target.c.role == _ASSISTANT, target.c.parent_seq), else_=target.c.seq)
    ).scalar_subquery()
    asked = (
        sa.select(
            m.c.seq,
            m.c.role,
            m.c.parent_seq,
            m.c.content,
            m.c.content_sealed,
            m.c.key_id,
            m.c.path_hash,
        )
        .where(regenerate, *_owner(m), m.c.seq == asked_seq)
        .cte("asked")
    )
    start = sa.select(
        sa.case(
            (target_seq.is_(None), _int("head_seq")),
            (regenerate, sa.select(asked.c.parent_seq).scalar_subquery()),
            else_=sa.select(target.c.parent_seq).scalar_subquery(),
        ).label("seq")
    ).cte("start")
    carried = ("seq", "parent_seq", "role", "content", "image_url", "content_sealed", "key_id")
    path = (
        sa.select(*(m.c[c] for c in carried), ONE.label("n"))
        .where(*_owner(m), m.c.seq == sa.select(start.c.seq).scalar_subquery())
        .cte("path", recursive=True)
    )
    step = _MESSAGE.alias("m")
    prev = path.alias("prev")
    path = path.union_all(
        sa.select(*(step.c[c] for c in carried), (prev.c.n + ONE).label("n"))
        .select_from(prev.join(step, sa.and_(*_owner(step), step.c.seq == prev.c.parent_seq)))
        .where(prev.c.n < _p("limit"))
    )
    p = path.alias("p")
    context = (
        sa.select(
            sa.func.coalesce(
                sa.func.json_agg(
                    aggregate_order_by(
                        sa.func.json_build_array(
                            p.c.seq,
                            p.c.role,
                            p.c.content,
                            p.c.image_url,
                            p.c.content_sealed,
                            p.c.key_id,
                            p.c.parent_seq,
                        ),
                        p.c.n,
                    )
                ),
                sa.literal_column("'[]'"),
            )
        )
        .select_from(p)
        .scalar_subquery()
    )

    def one(column: sa.ColumnElement[Any], label: str) -> sa.Label[Any]:
        return sa.select(column).scalar_subquery().label(label)

    # The new message's parent: its role and path hash (what the new one's chains on).
    parent = _MESSAGE.alias("parent")

    def of_parent(column: str) -> sa.Label[Any]:
        return (
            sa.select(parent.c[column])
            .where(*_owner(parent), parent.c.seq == sa.select(start.c.seq).scalar_subquery())
            .scalar_subquery()
            .label(f"parent_{column}")
        )

    t = _TURN.alias("t")
    alone = sa.select(ONE).subquery("one")
    stmt = sa.select(
        t.c.id.label("turn_id"),
        t.c.user_seq,
        t.c.heartbeat_at,
        t.c.idempotency_key,
        t.c.request_hash,
        context.label("context"),
        one(start.c.seq, "parent_seq"),
        one(target.c.role, "target_role"),
        one(target.c.parent_seq, "target_parent_seq"),
        one(asked.c.seq, "asked_seq"),
        one(asked.c.role, "asked_role"),
        one(asked.c.content, "asked_content"),
        one(asked.c.content_sealed, "asked_sealed"),
        one(asked.c.key_id, "asked_key_id"),
        one(asked.c.path_hash, "asked_path_hash"),
        of_parent("role"),
        of_parent("path_hash"),
    ).select_from(alone.outerjoin(t, sa.and_(*_owner(t), t.c.status == _GENERATING)))
    return compiled(stmt)


def _build_archive_session() -> sa.TextClause:
    s = _SESSION
    stmt = (
        sa.update(s)
        .where(*_owner(s, "id"))
        .values(status=_value(s.c.status, SessionStatus.ARCHIVED), archived_at=_p("now"))
    )
    return compiled(stmt)


def _build_restore_session() -> sa.TextClause:
    """`POST /api/chat` with `restore`: the archived conversation is active again, in the
    turn's opening transaction (the append that follows sets its last activity)."""
    s = _SESSION
    stmt = (
        sa.update(s)
        .where(*_owner(s, "id"))
        .values(status=_value(s.c.status, SessionStatus.ACTIVE), archived_at=sa.null())
    )
    return compiled(stmt)


def _turn_insert(notified: sa.CTE) -> sa.Insert:
    """The turn, `generating` (its RETURNING runs `notified`)."""
    values = {
        "id": _p("turn_id"),
        "user_id": _p("user_id"),
        "session_id": _p("session_id"),
        "status": _GENERATING,
        "user_seq": _p("seq"),
        "assistant": _p("assistant"),
        "expired_session_id": _p("expired_session_id"),
        "idempotency_key": _p("idempotency_key"),
        "request_hash": _p("request_hash"),
        "started_at": _p("now"),
        "heartbeat_at": _p("now"),
    }
    return sa.insert(_TURN).values(full_row(_TURN, values)).returning(_count(notified))


def _user_message() -> sa.CTE:
    """The user's message: a child of `:parent_seq`, one deeper."""
    values = {
        "session_id": _p("session_id"),
        "seq": _p("seq"),
        "user_id": _p("user_id"),
        "parent_seq": _int("parent_seq"),
        "depth": _depth_below(_int("parent_seq")),
        "role": _value(_MESSAGE.c.role, MessageRole.USER),
        "content": _p("content"),
        "content_sealed": _p("content_sealed"),
        "key_id": _p("key_id"),
        "metadata": _p("meta"),
        "path_hash": sa.cast(_p("path_hash"), sa.LargeBinary),
        "created_at": _p("now"),
    }
    return sa.insert(_MESSAGE).values(full_row(_MESSAGE, values)).cte("user_message")


def _model_or(current: Any) -> Any:
    """`:model` when the turn names one (the conversation switches to it), else `current`."""
    return sa.func.coalesce(sa.cast(_p("model"), _SESSION.c.model.type), current)


def _build_open_on_session() -> sa.TextClause:
    """Step 1's writes on an existing session: its count, head and activity, the user's
    message and the turn, in one statement (the session row is already locked)."""
    s = _SESSION
    notified = _notified()
    session_row = (
        sa.update(s)
        .where(*_owner(s, "id"))
        .values(
            message_count=_p("seq"),
            head_seq=_p("seq"),
            last_activity_at=_p("now"),
            model=_model_or(s.c.model),
        )
        .cte("session_row")
    )
    stmt = _turn_insert(notified).add_cte(notified, session_row, _user_message())
    return compiled(stmt, sa.bindparam("meta", type_=JSONB))


def _build_open_regenerate() -> sa.TextClause:
    """Step 1's writes of a regenerated reply: no new user message (the turn answers the
    stored one, `:seq`); the session's activity and the turn, in one statement."""
    s = _SESSION
    notified = _notified()
    session_row = (
        sa.update(s)
        .where(*_owner(s, "id"))
        .values(last_activity_at=_p("now"), model=_model_or(s.c.model))
        .cte("session_row")
    )
    return compiled(_turn_insert(notified).add_cte(notified, session_row))


def _build_open_with_new_session() -> sa.TextClause:
    """Step 1's writes for a new session: the session, the user's message and the turn."""
    values = {
        "id": _p("session_id"),
        "user_id": _p("user_id"),
        "title": _p("title"),
        "title_sealed": _p("title_sealed"),
        "key_id": _p("title_key_id"),
        "status": _value(_SESSION.c.status, SessionStatus.ACTIVE),
        "created_at": _p("now"),
        "last_activity_at": _p("now"),
        "message_count": ONE,
        "head_seq": ONE,
        "api_client": sa.cast(_p("api_client"), sa.String),
        "temporary": sa.cast(_p("temporary"), sa.Boolean),
        "model": _p("model"),
    }
    notified = _notified()
    new_session = sa.insert(_SESSION).values(full_row(_SESSION, values)).cte("new_session")
    stmt = _turn_insert(notified).add_cte(notified, new_session, _user_message())
    return compiled(stmt, sa.bindparam("meta", type_=JSONB))


def _build_claim_reply() -> sa.TextClause:
    """Step 3's first statement: lock the session row, give the reply the next `seq`, count
    its tokens and end the turn, if the turn is still this process's to end; the head
    moves to the reply unless it was moved elsewhere while the model wrote
    (`:expected_head` is the head the turn left). Answers (session's message count, reply
    seq): a null count means the session is gone; a null reply seq means the turn was
    failed elsewhere (and nothing changed)."""
    s, t = _SESSION, _TURN
    locked = (
        sa.select(s.c.id, s.c.message_count).where(*_owner(s, "id")).with_for_update().cte("locked")
    )
    claimed = (
        sa.update(t)
        .where(
            t.c.id == _p("turn_id"),
            *_owner(t),
            t.c.status == _GENERATING,
            sa.exists(sa.select(ONE).select_from(locked)),
        )
        .values(
            status=_p("status"),
            reply_seq=sa.select(locked.c.message_count + ONE).scalar_subquery(),
            partial_reply=sa.null(),
            prompt_tokens=_p("prompt_tokens"),
            completion_tokens=_p("completion_tokens"),
            finished_at=_p("now"),
            heartbeat_at=_p("now"),
        )
        .returning(t.c.reply_seq)
        .cte("claimed")
    )
    bumped = (
        sa.update(s)
        .where(*_owner(s, "id"), sa.exists(sa.select(ONE).select_from(claimed)))
        .values(
            message_count=s.c.message_count + ONE,
            last_activity_at=_p("now"),
            head_seq=sa.case(
                (
                    s.c.head_seq.is_not_distinct_from(_int("expected_head")),
                    sa.select(claimed.c.reply_seq).scalar_subquery(),
                ),
                else_=s.c.head_seq,
            ),
            prompt_tokens=s.c.prompt_tokens + _p("prompt_add"),
            completion_tokens=s.c.completion_tokens + _p("completion_add"),
        )
        .cte("bumped")
    )
    stmt = sa.select(
        sa.select(locked.c.message_count).scalar_subquery().label("message_count"),
        sa.select(claimed.c.reply_seq).scalar_subquery().label("reply_seq"),
    ).add_cte(bumped)
    return compiled(stmt)


def _build_insert_reply() -> sa.TextClause:
    """Step 3's reply (a child of the message it answers), after the assistant recorded
    what it names."""
    values = {
        "session_id": _p("session_id"),
        "seq": _p("seq"),
        "user_id": _p("user_id"),
        "parent_seq": _p("parent_seq"),
        "depth": _depth_below(_p("parent_seq")),
        "role": _ASSISTANT,
        "content": _p("content"),
        "content_sealed": _p("content_sealed"),
        "key_id": _p("key_id"),
        "image_url": _p("image_url"),
        "metadata": _p("meta"),
        "path_hash": sa.cast(_p("path_hash"), sa.LargeBinary),
        "created_at": _p("now"),
    }
    notified = _notified()
    stmt = (
        sa.insert(_MESSAGE)
        .values(full_row(_MESSAGE, values))
        .returning(_count(notified))
        .add_cte(notified)
    )
    return compiled(stmt, sa.bindparam("meta", type_=JSONB))


def _turns_and_owners(*more: str) -> Any:
    """The rows `(id, user_id, *more)` given as parallel arrays `:ids`, `:owners`, ...: the
    turns a process runs, each with its owner."""
    arrays = [sa.cast(_p("ids"), ARRAY(sa.Uuid)), sa.cast(_p("owners"), ARRAY(sa.Uuid))]
    arrays += [sa.cast(_p(f"{name}s"), ARRAY(sa.Text)) for name in more]
    return sa.func.unnest(*arrays).table_valued("id", "user_id", *more).render_derived(name="v")


def _build_heartbeat() -> sa.TextClause:
    """The checkpoint's heartbeat: one small statement for every turn generating in a
    process, apart from the partial replies (which may be large, or wait on a lock). Each
    turn is named with its owner."""
    t = typing.cast(sa.Alias, _TURN.alias("t"))
    v = _turns_and_owners()
    stmt = (
        sa.update(t)
        .where(t.c.id == v.c.id, t.c.user_id == v.c.user_id, t.c.status == _GENERATING)
        .values(heartbeat_at=_p("now"))
        .returning(t.c.id, t.c.cancel_requested_at.is_not(None).label("cancel"))
    )
    return compiled(stmt)


def _build_save_partials() -> sa.TextClause:
    """The checkpoint's partial replies (each at most MAX_REPLY_CHARS), after the
    heartbeat. Each turn is named with its owner."""
    t = typing.cast(sa.Alias, _TURN.alias("t"))
    v = _turns_and_owners("text")
    stmt = (
        sa.update(t)
        .where(t.c.id == v.c.id, t.c.user_id == v.c.user_id, t.c.status == _GENERATING)
        .values(partial_reply=v.c.text)
        .returning(t.c.id)
    )
    return compiled(stmt)


LOCKED_SESSION = _build_locked_session()
BUSY_TURN_AND_CONTEXT = _build_busy_turn_and_context()
ARCHIVE_SESSION = _build_archive_session()
RESTORE_SESSION = _build_restore_session()
OPEN_ON_SESSION = _build_open_on_session()
OPEN_REGENERATE = _build_open_regenerate()
OPEN_WITH_NEW_SESSION = _build_open_with_new_session()
CLAIM_REPLY = _build_claim_reply()
INSERT_REPLY = _build_insert_reply()
HEARTBEAT = _build_heartbeat()
SAVE_PARTIALS = _build_save_partials()
# A time limit on the rest of the current transaction (waiting on locks included).
LIMIT_TRANSACTION = sa.text(
    "SELECT set_config('statement_timeout', :limit, true), set_config('lock_timeout', :limit, true)"
)

# Every prebuilt statement, by name (the tests hold them to the tables).
PREBUILT: dict[str, sa.TextClause] = {
    "LOCKED_SESSION": LOCKED_SESSION,
    "BUSY_TURN_AND_CONTEXT": BUSY_TURN_AND_CONTEXT,
    "ARCHIVE_SESSION": ARCHIVE_SESSION,
    "OPEN_ON_SESSION": OPEN_ON_SESSION,
    "OPEN_REGENERATE": OPEN_REGENERATE,
    "OPEN_WITH_NEW_SESSION": OPEN_WITH_NEW_SESSION,
    "CLAIM_REPLY": CLAIM_REPLY,
    "INSERT_REPLY": INSERT_REPLY,
    "HEARTBEAT": HEARTBEAT,
    "SAVE_PARTIALS": SAVE_PARTIALS,
}


def _notify(payloads: list[str]) -> dict[str, Any]:
    return {"channel": CHANNEL, "payloads": payloads}


# ------------------------------------------------------------------------- repositories


class TurnRepository:
    """A turn's statements for one owner: each names `user_id`, so another user's
    conversation or turn is a missing one."""

    def __init__(self, db: AsyncSession, user_id: uuid.UUID) -> None:
        if user_id is None:
            raise TypeError("TurnRepository needs the owner's id, not None")
        self.db = db
        self.user_id = user_id

    # -- reads of turns

    async def by_idempotency_key(self, key: str) -> ChatTurn | None:
        stmt = owned(ChatTurn, self.user_id).where(col(ChatTurn.idempotency_key) == key)
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def generating(self, session_id: str) -> ChatTurn | None:
        """The turn generating on this owner's conversation, if any."""
        stmt = owned(ChatTurn, self.user_id).where(
            col(ChatTurn.session_id) == session_id, col(ChatTurn.status) == TurnStatus.GENERATING
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def failed_at(self, session_id: str, user_seq: int) -> ChatTurn | None:
        """The newest turn that failed to answer the user message `user_seq`."""
        stmt = (
            owned(ChatTurn, self.user_id)
            .where(
                col(ChatTurn.session_id) == session_id,
                col(ChatTurn.user_seq) == user_seq,
                col(ChatTurn.status) == TurnStatus.FAILED,
            )
            .order_by(col(ChatTurn.started_at).desc())
            .limit(1)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def in_session(self, *, session_id: str, turn_id: uuid.UUID) -> ChatTurn | None:
        stmt = owned(ChatTurn, self.user_id).where(
            col(ChatTurn.id) == turn_id, col(ChatTurn.session_id) == session_id
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def fresh(self, turn_id: uuid.UUID) -> ChatTurn | None:
        """The turn as stored now (not as this session last loaded it)."""
        stmt = (
            owned(ChatTurn, self.user_id)
            .where(col(ChatTurn.id) == turn_id)
            .execution_options(populate_existing=True)
        )
        return (await self.db.execute(stmt)).scalar_one_or_none()

    async def reply_after(
        self, *, session_id: str, reply_seq: int, offset: int
    ) -> tuple[str, int, str | None, bool] | None:
        """A stored reply's text after `offset`, its whole length, its image and whether it
        was cut at MAX_REPLY_CHARS; None when the conversation is gone."""
        row = (
            await self.db.execute(
                owned(
                    ChatMessage,
                    self.user_id,
                    sa.func.substr(col(ChatMessage.content), offset + 1),
                    sa.func.length(col(ChatMessage.content)),
                    col(ChatMessage.image_url),
                    col(ChatMessage.content_sealed),
                    col(ChatMessage.key_id),
                    col(ChatMessage.meta)["truncated"].as_boolean(),
                ).where(
                    col(ChatMessage.session_id) == session_id,
                    col(ChatMessage.seq) == reply_seq,
                )
            )
        ).one_or_none()
        if row is None:
            return None
        if row[4] is not None:  # sealed: the whole reply is opened, then cut here
            reply = open_message(self.db, self.user_id, session_id, reply_seq, row[3], row[4])
            return reply[offset:], len(reply), row[2], bool(row[5])
        return row[0] or "", int(row[1] or 0), row[2], bool(row[5])

    # -- step 1: opening

    async def lock_session(self, session_id: str) -> sa.Row[Any] | None:
        """The conversation's row, locked (status, last_activity_at, message_count,
        head_seq, model, temporary), or None: unknown and another user's ids read alike."""
        params = {"session_id": session_id, "user_id": self.user_id}
        return (await execute(self.db, LOCKED_SESSION, params)).one_or_none()

    async def archive_session(self, session_id: str, *, now: datetime) -> None:
        params = {"session_id": session_id, "user_id": self.user_id, "now": now}
        await execute(self.db, ARCHIVE_SESSION, params)

    async def restore_session(self, session_id: str) -> None:
        params = {"session_id": session_id, "user_id": self.user_id}
        await execute(self.db, RESTORE_SESSION, params)

    async def busy_turn_and_context(
        self,
        session_id: str,
        *,
        limit: int,
        head_seq: int | None,
        target_seq: int | None,
        regenerate: bool,
    ) -> sa.Row[Any]:
        params = {
            "session_id": session_id,
            "user_id": self.user_id,
            "limit": limit,
            "head_seq": head_seq,
            "target_seq": target_seq,
            "regenerate": regenerate,
        }
        return (await execute(self.db, BUSY_TURN_AND_CONTEXT, params)).one()

    def asked_message(self, session_id: str, row: sa.Row[Any]) -> str:
        """The text of the user message a regenerated reply answers (opened)."""
        return open_message(
            self.db,
            self.user_id,
            session_id,
            row.asked_seq,
            row.asked_sealed,
            row.asked_key_id,
            row.asked_content,
        )

    def context(self, session_id: str, row: sa.Row[Any], limits: ContextLimits) -> FittedPath:
        """The assistant's context read beside the lock, opened and fitted to `limits`,
        with the newest message the budget drops."""

        def open_content(seq: int, sealed: Any, key_id: str | None, plain: str) -> str:
            if isinstance(sealed, str):  # read as JSON: a sealed bytea arrives as '\x…'
                sealed = bytes.fromhex(sealed.removeprefix("\\x"))
            return open_message(self.db, self.user_id, session_id, seq, sealed, key_id, plain)

        opener: Callable[[int, Any, str | None, str], str] = open_content
        return fit_path(row.context, limits, opener)

    async def open_regenerate(self, params: dict[str, Any], *, payloads: list[str]) -> None:
        """The turn that answers a stored message again (no message is written)."""
        await execute(
            self.db, OPEN_REGENERATE, {**params, "user_id": self.user_id, **_notify(payloads)}
        )

    async def open_with_message(
        self,
        params: dict[str, Any],
        *,
        session_id: str,
        seq: int,
        message: str,
        title: str | None,
        payloads: list[str],
    ) -> None:
        """The user's message and the turn, on the locked conversation, or with `title` on
        a new one; sealed, with their blind index, when encryption is on."""
        keyring = keyring_of(self.db)
        user_id = self.user_id
        values = {**params, "user_id": user_id, "session_id": session_id, "seq": seq}
        values |= sealed_content(
            keyring, user_id=user_id, session_id=session_id, seq=seq, content=message
        )
        tokens: list[dict[str, Any]] = []
        if keyring is not None:
            tokens.append(
                token_row(keyring, user_id=user_id, session_id=session_id, seq=seq, text=message)
            )
        if title is not None:
            values |= sealed_title(keyring, user_id=user_id, session_id=session_id, title=title)
            if keyring is not None:
                tokens.append(
                    token_row(
                        keyring, user_id=user_id, session_id=session_id, seq=TITLE_SEQ, text=title
                    )
                )
            await execute(self.db, OPEN_WITH_NEW_SESSION, values | _notify(payloads))
        else:
            await execute(self.db, OPEN_ON_SESSION, values | _notify(payloads))
        if tokens:  # the blind index of what was sealed (encryption on only)
            await self.db.execute(upsert_tokens(tokens))

    # -- step 3: closing, or failing

    async def claim_reply(
        self,
        *,
        session_id: str,
        turn_id: uuid.UUID,
        status: TurnStatus,
        usage: Usage | None,
        expected_head: int | None,
        now: datetime,
    ) -> tuple[int | None, int | None]:
        tokens = {
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
        }
        params = {
            "user_id": self.user_id,
            "session_id": session_id,
            "turn_id": turn_id,
            "status": status.value,
            **tokens,
            "prompt_add": tokens["prompt_tokens"] or 0,
            "completion_add": tokens["completion_tokens"] or 0,
            "expected_head": expected_head,
            "now": now,
        }
        message_count, reply_seq = (await execute(self.db, CLAIM_REPLY, params)).one()
        return message_count, reply_seq

    async def insert_reply(
        self,
        *,
        session_id: str,
        seq: int,
        parent_seq: int,
        text: str,
        image_url: str | None,
        meta: dict[str, Any],
        now: datetime,
        payloads: list[str],
        path_hash: bytes | None = None,
    ) -> None:
        keyring = keyring_of(self.db)
        user_id = self.user_id
        if keyring is not None:
            row = token_row(keyring, user_id=user_id, session_id=session_id, seq=seq, text=text)
            await self.db.execute(upsert_tokens([row]))
        sealed = sealed_content(
            keyring, user_id=user_id, session_id=session_id, seq=seq, content=text
        )
        params = {
            "session_id": session_id,
            "seq": seq,
            "user_id": user_id,
            "parent_seq": parent_seq,
            **sealed,
            "image_url": image_url,
            "meta": meta,
            "path_hash": path_hash,
            "now": now,
            **_notify(payloads),
        }
        await execute(self.db, INSERT_REPLY, params)

    async def mark_failed(
        self,
        *,
        turn_id: uuid.UUID,
        session_id: str,
        user_seq: int,
        problem: dict[str, Any],
        now: datetime,
        partial: str | None = None,
        usage: Usage | None = None,
    ) -> bool:
        """Fail the turn if it is still generating, and note why on the asking message.
        False: it had already ended."""
        # With encryption on, a failed turn keeps no partial reply: it would stay in
        # plaintext.
        if keyring_of(self.db) is not None:
            kept: Any = None
        else:
            kept = partial if partial is not None else ChatTurn.partial_reply
        failed = await self.db.execute(
            owned_update(ChatTurn, self.user_id)
            .where(col(ChatTurn.id) == turn_id, col(ChatTurn.status) == TurnStatus.GENERATING)
            .values(
                status=TurnStatus.FAILED,
                error=problem,
                partial_reply=kept,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
                finished_at=now,
            )
            .returning(col(ChatTurn.id))
        )
        if failed.scalar_one_or_none() is None:
            return False
        # The asking message keeps a note of why it got no answer (exports show it).
        await self.db.execute(
            owned_update(ChatMessage, self.user_id)
            .where(col(ChatMessage.session_id) == session_id, col(ChatMessage.seq) == user_seq)
            .values(
                meta=col(ChatMessage.meta).op("||")(
                    sa.func.jsonb_build_object("assistantError", str(problem.get("detail", "")))
                )
            )
        )
        return True


class TurnOperatorRepository:
    """Statements over the turns of several owners: the checkpoint of the turns this
    process runs (each named with its owner), and the stale sweep (which fails each turn
    it finds through its owner's `TurnRepository`). Nothing here reads a message."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def heartbeat(
        self, turns: Sequence[tuple[uuid.UUID, uuid.UUID]], *, now: datetime
    ) -> list[Any]:
        """Rows (id, cancel) of the turns `(id, owner)` still generating, their heartbeat
        moved to now."""
        params = {
            "now": now,
            "ids": [str(t) for t, _ in turns],
            "owners": [str(o) for _, o in turns],
        }
        return list((await execute(self.db, HEARTBEAT, params)).all())

    async def save_partials(
        self, turns: Sequence[tuple[uuid.UUID, uuid.UUID, str]], *, seconds: float
    ) -> set[uuid.UUID]:
        """Write the partial replies of turns `(id, owner, text)` within `seconds` (a lock
        or a slow write fails them alone); the ids of the turns written."""
        limit = f"{max(1, int(seconds * 1000))}ms"
        await execute(self.db, LIMIT_TRANSACTION, {"limit": limit})
        params = {
            "ids": [str(t) for t, _, _ in turns],
            "owners": [str(o) for _, o, _ in turns],
            "texts": [text for _, _, text in turns],
        }
        rows = (await execute(self.db, SAVE_PARTIALS, params)).all()
        return {uuid.UUID(str(r.id)) for r in rows}

    async def stale(self, *, cutoff: datetime, limit: int) -> Sequence[ChatTurn]:
        """Turns generating whose heartbeat is older than `cutoff`, locked (skipping those
        another sweeper holds), oldest first."""
        stmt = (
            sa.select(ChatTurn)
            .where(
                col(ChatTurn.status) == TurnStatus.GENERATING,
                col(ChatTurn.heartbeat_at) < cutoff,
            )
            .order_by(col(ChatTurn.heartbeat_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.db.execute(stmt)).scalars().all()

    async def forget_idempotency_keys(self, *, before: datetime, batch: int) -> int:
        """Clears the idempotency key of up to `batch` finished turns started before
        `before` (a retry with that key then opens a new turn); returns how many."""
        picked = (
            sa.select(col(ChatTurn.id))
            .where(
                col(ChatTurn.idempotency_key).is_not(None),
                col(ChatTurn.started_at) < before,
                col(ChatTurn.status) != TurnStatus.GENERATING,
            )
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        rows = await self.db.execute(
            sa.update(ChatTurn)
            .where(col(ChatTurn.id).in_(picked))
            .values(idempotency_key=None)
            .returning(col(ChatTurn.id))
        )
        return len(rows.all())
