"""The chat turn's two short transactions, and what other instances read of a turn.

    open_turn    one transaction: lock the session row, append the user's message
                 (`seq` n), record the turn (`generating`), let the assistant read what it
                 needs, commit. No model has been called yet.
    (generate)   the runner calls the model with no connection held.
    close_turn   one transaction: lock the session row, append the reply (`seq` n+1), let
                 the assistant write its records, mark the turn done, commit.
    fail_turn    instead of closing: the user's message stays, the turn says why.

A conversation has at most one turn generating (a partial unique index says so), so `seq`
runs 1..n without gaps: a second message while a reply is generating gets
`409 turn_in_progress` with `Retry-After`. A turn whose process stopped sending heartbeats
for TURN_STALE_SECONDS is failed by whoever finds it (the next turn on that conversation,
a follower, or the sweeper), so a crash never blocks a conversation for long.

The turn service owns its transactions, as background jobs do: it commits, through the
event bus, so that live events leave exactly when their rows are committed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.assistant.base import Assistant, HistoryMessage, TurnInput, Usage
from app.conversations.blind_index import token_row
from app.conversations.blind_index import upsert as upsert_tokens
from app.conversations.ids import is_well_formed, new_session_id
from app.conversations.models import TITLE_SEQ, ChatMessage, SessionStatus
from app.conversations.service import (
    ContextLimits,
    open_message,
    pick_context,
    title_from_message,
)
from app.core.db import commit, roll_back
from app.core.errors import ConflictError, InvalidInputError, NotFoundError, problem_body
from app.core.tenancy import owned, owned_update
from app.encryption.crypto import keyring_of
from app.events.bus import EventBus, user_event
from app.turns import statements
from app.turns.models import ChatTurn, TurnStatus

logger = logging.getLogger("app.turns")

TURN_RETRY_AFTER_SECONDS = 2
MAX_IDEMPOTENCY_KEY_CHARS = 200


class TurnInProgressError(ConflictError):
    code = "turn_in_progress"
    title = "A reply is still being written"


class IdempotencyKeyReusedError(InvalidInputError):
    code = "idempotency_key_reused"


class SessionNotActiveError(ConflictError):
    code = "session_not_active"
    title = "The conversation is not open"


def _no_session() -> NotFoundError:
    return NotFoundError("No conversation with this id.", code="session_not_found")


def _no_message() -> NotFoundError:
    return NotFoundError("No message with this seq in this conversation.", code="message_not_found")


def _check_target(request: TurnRequest, row: Any) -> None:
    """An edit names a user message; a regenerate an assistant message that answers a user
    message, or a user message. Anything else writes nothing."""
    if row.target_role is None:
        raise _no_message()
    if request.edit_seq is not None and row.target_role != "user":
        raise InvalidInputError(
            "Only a user message can be edited; regenerate an assistant message instead.",
            code="not_a_user_message",
        )
    if request.regenerate_seq is not None and row.asked_role != "user":
        raise InvalidInputError(
            "Only a reply to a user message, or a user message, can be regenerated.",
            code="not_regenerable",
        )


@dataclass(frozen=True)
class TurnRequest:
    user_id: uuid.UUID
    session_id: str | None
    message: str
    context: str | None
    idempotency_key: str | None = None
    request_hash: str | None = None
    # What turns opened before request hashes were keyed stored (see request_hash).
    legacy_request_hash: str | None = None
    # An edit: the user message this one is a new version of (it gets that one's parent).
    edit_seq: int | None = None
    # A regenerated reply: the assistant message it is a new version of, or the user
    # message it answers. `message` is unused (the stored message is answered).
    regenerate_seq: int | None = None
    # Continue the named conversation even when archived (restore it first); an unknown
    # one is then a 404 instead of a new conversation.
    restore: bool = False


@dataclass
class OpenedTurn:
    """A turn that committed its opening transaction and waits for its reply."""

    turn_id: uuid.UUID
    user_id: uuid.UUID
    session_id: str
    user_seq: int
    expired_session_id: str | None
    input: TurnInput
    prepared: Any
    assistant: Assistant
    # The head as this turn left it: the reply becomes the head unless it moved meanwhile.
    expected_head: int | None = None


@dataclass(frozen=True)
class ExistingTurn:
    """What an idempotent retry finds: the turn its key opened before."""

    turn_id: uuid.UUID
    session_id: str


@dataclass(frozen=True)
class ClosedTurn:
    reply_seq: int
    image_url: str | None
    status: str


class TurnLostError(Exception):
    """The turn was failed elsewhere (declared stale) before this process could close it."""


class SessionGoneError(TurnLostError):
    """The conversation was deleted while the model wrote."""


REQUEST_HASH_CONTEXT = b"chatkeep request hash v1"


def request_hash_key(secret_key: str) -> bytes:
    """The key of request hashes, derived from SECRET_KEY for this one use."""
    return hmac.new(secret_key.encode(), REQUEST_HASH_CONTEXT, hashlib.sha256).digest()


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def request_hash(payload: Any, *, key: bytes) -> str:
    """A stable fingerprint of a request body: the same body, the same hash.

    Keyed (HMAC-SHA256), so that with encryption on a stored hash cannot confirm a guess
    at the message without SECRET_KEY.
    """
    return hmac.new(key, _canonical(payload), hashlib.sha256).hexdigest()


def legacy_request_hash(payload: Any) -> str:
    """The unkeyed SHA-256 that turns stored before hashes were keyed. A retry of such a
    turn after the upgrade still matches it, so it is not refused as a reused key."""
    return hashlib.sha256(_canonical(payload)).hexdigest()


def validate_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if (
        not key
        or len(key) > MAX_IDEMPOTENCY_KEY_CHARS
        or not key.isprintable()
        or not key.isascii()
    ):
        raise InvalidInputError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII "
            "characters (a UUID is a good choice).",
            code="invalid_idempotency_key",
        )
    return key


def _in_progress(turn_id: uuid.UUID, session_id: str) -> TurnInProgressError:
    return TurnInProgressError(
        "The assistant is still answering your previous message in this conversation. "
        "Wait for it (or stop it), then send again.",
        headers={"Retry-After": str(TURN_RETRY_AFTER_SECONDS)},
        extra={"turnId": str(turn_id), "sessionId": session_id},
    )


def deleted_problem(session_id: str) -> dict[str, Any]:
    return problem_body(
        404,
        detail="The conversation was deleted while the reply was being written.",
        code="session_not_found",
        title="Not found",
        extra={"sessionId": session_id},
    )


def interrupted_problem(session_id: str) -> dict[str, Any]:
    return problem_body(
        503,
        detail=(
            "The reply was interrupted (the server restarted or lost its database). "
            "Your message was saved; please send it again."
        ),
        code="turn_interrupted",
        title="Reply interrupted",
        extra={"sessionId": session_id},
    )


async def _turn_by_key(db: AsyncSession, *, user_id: uuid.UUID, key: str) -> ChatTurn | None:
    stmt = owned(ChatTurn, user_id).where(col(ChatTurn.idempotency_key) == key)
    return (await db.execute(stmt)).scalar_one_or_none()


def _existing(found: ChatTurn | _BusyTurn, request: TurnRequest) -> ExistingTurn:
    if found.request_hash not in {request.request_hash, request.legacy_request_hash}:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was already used for a different request. "
            "Use a new key for a new message.",
            extra={"turnId": str(found.id), "sessionId": found.session_id},
        )
    return ExistingTurn(turn_id=found.id, session_id=found.session_id)


async def _generating_turn(db: AsyncSession, *, session_id: str) -> ChatTurn | None:
    stmt = sa.select(ChatTurn).where(
        col(ChatTurn.session_id) == session_id, col(ChatTurn.status) == TurnStatus.GENERATING
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def open_turn(
    *,
    db: AsyncSession,
    bus: EventBus,
    assistant: Assistant,
    request: TurnRequest,
    now: datetime,
    ttl_seconds: int,
    limits: ContextLimits,
    stale_seconds: float,
) -> OpenedTurn | ExistingTurn:
    """Step 1 of a turn, in one short transaction that this function commits."""
    try:
        return await _open(
            db=db,
            bus=bus,
            assistant=assistant,
            request=request,
            now=now,
            ttl_seconds=ttl_seconds,
            limits=limits,
            stale_seconds=stale_seconds,
        )
    except IntegrityError:
        # Lost a race: a retry with the same key, or another turn on the same session,
        # committed first. Nothing of ours was written; say what won.
        await roll_back(db, bus)
        if request.idempotency_key is not None:
            found = await _turn_by_key(db, user_id=request.user_id, key=request.idempotency_key)
            if found is not None:
                return _existing(found, request)
        if request.session_id is not None:
            busy = await _generating_turn(db, session_id=request.session_id)
            if busy is not None and busy.user_id == request.user_id:
                raise _in_progress(busy.id, busy.session_id) from None
        raise
    except BaseException:
        await roll_back(db, bus)
        raise


async def _open(
    *,
    db: AsyncSession,
    bus: EventBus,
    assistant: Assistant,
    request: TurnRequest,
    now: datetime,
    ttl_seconds: int,
    limits: ContextLimits,
    stale_seconds: float,
) -> OpenedTurn | ExistingTurn:
    user_id = request.user_id
    if request.idempotency_key is not None:
        found = await _turn_by_key(db, user_id=user_id, key=request.idempotency_key)
        if found is not None:
            existing = _existing(found, request)
            await commit(db, bus)  # nothing was written; a commit keeps loaded objects usable
            return existing

    # The session to append to: its id and the seq the user's message takes.
    session_id: str | None = None
    seq = 1
    parent_seq: int | None = None
    expected_head: int | None = None
    message = request.message
    expired_id: str | None = None
    history: list[HistoryMessage] = []
    target_seq = request.edit_seq if request.edit_seq is not None else request.regenerate_seq
    regenerate = request.regenerate_seq is not None
    if request.session_id is not None and is_well_formed(request.session_id):
        # Unknown, ill-formed and another user's ids all end here as None: same query,
        # same answer (a new session), nothing about the other session revealed.
        locked = (
            await db.execute(
                statements.LOCKED_SESSION,
                {"session_id": request.session_id, "user_id": user_id},
            )
        ).one_or_none()
        closed = locked is not None and (
            locked.status != SessionStatus.ACTIVE
            or locked.last_activity_at < now - timedelta(seconds=ttl_seconds)
        )
        if locked is not None and closed and request.restore:
            await _restore(db, bus, request, locked.status)
            closed = False
        if locked is not None and closed:
            if target_seq is not None:
                # An edit or a regenerate belongs to this conversation; it never moves
                # to a new one.
                raise SessionNotActiveError(
                    "This conversation is archived or has expired; restore it to edit or "
                    "regenerate its messages.",
                    extra={"sessionId": request.session_id},
                )
            if locked.status == SessionStatus.ACTIVE:
                await db.execute(
                    statements.ARCHIVE_SESSION,
                    {"session_id": request.session_id, "user_id": user_id, "now": now},
                )
                bus.stage(
                    db,
                    user_event(user_id, "session", sessionId=request.session_id, change="archived"),
                )
            expired_id = request.session_id
        elif locked is not None:
            session_id, seq = request.session_id, locked.message_count + 1
            busy_row = (
                await db.execute(
                    statements.BUSY_TURN_AND_CONTEXT,
                    {
                        "session_id": session_id,
                        "user_id": user_id,
                        "limit": limits.max_messages,
                        "head_seq": locked.head_seq,
                        "target_seq": target_seq,
                        "regenerate": regenerate,
                    },
                )
            ).one()
            if target_seq is not None:
                _check_target(request, busy_row)
            parent_seq = busy_row.parent_seq
            if regenerate:
                seq = busy_row.asked_seq
                message = open_message(
                    db,
                    user_id,
                    session_id,
                    seq,
                    busy_row.asked_sealed,
                    busy_row.asked_key_id,
                    busy_row.asked_content,
                )
                expected_head = locked.head_seq
            else:
                expected_head = seq
            history = pick_context(
                busy_row.context, limits, _context_opener(db, user_id, session_id)
            )
            if busy_row.turn_id is not None:
                busy = _BusyTurn(
                    id=busy_row.turn_id,
                    user_id=user_id,
                    session_id=session_id,
                    user_seq=busy_row.user_seq,
                    idempotency_key=busy_row.idempotency_key,
                    request_hash=busy_row.request_hash,
                )
                if request.idempotency_key is not None and busy.idempotency_key == (
                    request.idempotency_key
                ):
                    # A retry that raced its first attempt to this lock: join it.
                    existing = _existing(busy, request)
                    await commit(db, bus)
                    return existing
                if busy_row.heartbeat_at >= now - timedelta(seconds=stale_seconds):
                    raise _in_progress(busy.id, session_id)
                await _mark_failed(
                    db, bus, turn=busy, problem=interrupted_problem(session_id), now=now
                )
    if (target_seq is not None or request.restore) and session_id is None:
        raise _no_session()

    turn_id = uuid.uuid4()
    params: dict[str, Any] = {
        "user_id": user_id,
        "seq": seq,
        "meta": {"context": request.context} if request.context else {},
        "now": now,
        "turn_id": turn_id,
        "assistant": assistant.name,
        "expired_session_id": expired_id,
        "idempotency_key": request.idempotency_key,
        "request_hash": request.request_hash,
    }
    created = session_id is None
    if session_id is None:
        session_id = new_session_id(now)
        expected_head = seq
    turn_input = TurnInput(
        user_id=user_id,
        session_id=session_id,
        message_seq=seq,
        history=history,
        message=message,
        context=request.context,
        now=now,
        parent_seq=parent_seq,
    )
    # The assistant only reads here (under the session lock), so it may read before the
    # rows go in, and the rows' statement can carry the events.
    prepared = await assistant.prepare(db=db, turn=turn_input)

    if created:
        bus.stage(db, user_event(user_id, "session", sessionId=session_id, change="created"))
    if not regenerate:
        bus.stage(db, user_event(user_id, "message", sessionId=session_id, seq=seq, role="user"))
    bus.stage(
        db,
        user_event(user_id, "turn", sessionId=session_id, turnId=str(turn_id), status="generating"),
    )
    keyring = keyring_of(db)
    params |= {
        "session_id": session_id,
        "parent_seq": parent_seq,
        **statements.notify_params(bus.take_notifies(db)),
    }
    if regenerate:  # the stored message is answered again: no message is written
        await db.execute(statements.OPEN_REGENERATE, params)
        await commit(db, bus)
        return _opened(
            turn_id,
            user_id,
            session_id,
            seq,
            expired_id,
            turn_input,
            prepared,
            assistant,
            expected_head,
        )
    params |= statements.sealed_content(
        keyring, user_id=user_id, session_id=session_id, seq=seq, content=request.message
    )
    tokens: list[dict[str, Any]] = []
    if keyring is not None:
        tokens.append(
            token_row(
                keyring, user_id=user_id, session_id=session_id, seq=seq, text=request.message
            )
        )
    if created:
        title = title_from_message(request.message)
        params |= statements.sealed_title(
            keyring, user_id=user_id, session_id=session_id, title=title
        )
        if keyring is not None:
            tokens.append(
                token_row(
                    keyring, user_id=user_id, session_id=session_id, seq=TITLE_SEQ, text=title
                )
            )
        await db.execute(statements.OPEN_WITH_NEW_SESSION, params)
    else:
        await db.execute(statements.OPEN_ON_SESSION, params)
    if tokens:  # the blind index of what was sealed (encryption on only)
        await db.execute(upsert_tokens(tokens))
    await commit(db, bus)
    return _opened(
        turn_id,
        user_id,
        session_id,
        seq,
        expired_id,
        turn_input,
        prepared,
        assistant,
        expected_head,
    )


async def _restore(
    db: AsyncSession, bus: EventBus, request: TurnRequest, status: SessionStatus | str
) -> None:
    """An archived (or expired) conversation the user writes in becomes active again; one
    in the trash stays there (restoring it is History's explicit step)."""
    if status == SessionStatus.TRASHED:
        raise SessionNotActiveError(
            "This conversation is in the trash; restore it from History to continue it.",
            code="session_trashed",
            extra={"sessionId": request.session_id},
        )
    if status == SessionStatus.ACTIVE:
        return  # expired but not yet archived by the sweeper: it simply goes on
    await db.execute(
        statements.RESTORE_SESSION,
        {"session_id": request.session_id, "user_id": request.user_id},
    )
    bus.stage(
        db,
        user_event(request.user_id, "session", sessionId=request.session_id, change="restored"),
    )


def _opened(
    turn_id: uuid.UUID,
    user_id: uuid.UUID,
    session_id: str,
    seq: int,
    expired_id: str | None,
    turn_input: TurnInput,
    prepared: Any,
    assistant: Assistant,
    expected_head: int | None,
) -> OpenedTurn:
    return OpenedTurn(
        turn_id=turn_id,
        user_id=user_id,
        session_id=session_id,
        user_seq=seq,
        expired_session_id=expired_id,
        input=turn_input,
        prepared=prepared,
        assistant=assistant,
        expected_head=expected_head,
    )


async def close_turn(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    opened: OpenedTurn,
    text: str,
    outcome: Any,
    stopped: bool,
    usage: Usage | None,
    now: datetime,
    truncated: bool = False,
) -> ClosedTurn:
    """Step 3 of a turn: the reply, the assistant's records and the turn's end, together.

    A `truncated` reply (cut at MAX_REPLY_CHARS) ends the turn `done`, marked so."""
    status = TurnStatus.STOPPED if stopped else TurnStatus.DONE
    async with sessionmaker() as db:
        try:
            tokens = {
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
            }
            message_count, reply_seq = (
                await db.execute(
                    statements.CLAIM_REPLY,
                    {
                        "user_id": opened.user_id,
                        "session_id": opened.session_id,
                        "turn_id": opened.turn_id,
                        "status": status.value,
                        **tokens,
                        "prompt_add": tokens["prompt_tokens"] or 0,
                        "completion_add": tokens["completion_tokens"] or 0,
                        "expected_head": opened.expected_head,
                        "now": now,
                    },
                )
            ).one()
            if message_count is None:  # deleted while the model wrote
                raise SessionGoneError(str(opened.turn_id))
            if reply_seq is None:
                raise TurnLostError(str(opened.turn_id))
            recorded = await opened.assistant.record(
                db=db,
                turn=opened.input,
                prepared=opened.prepared,
                outcome=outcome,
                stopped=stopped or truncated,  # cut off either way: only what was complete
            )
            meta: dict[str, Any] = {"assistant": opened.assistant.name, **recorded.metadata}
            if stopped:
                meta["stopped"] = True
            if truncated:
                meta["truncated"] = True
            if usage is not None:
                meta["usage"] = usage.as_json()
            await db.flush()  # what the assistant recorded, before the reply that names it
            bus.stage(
                db,
                user_event(
                    opened.user_id,
                    "message",
                    sessionId=opened.session_id,
                    seq=reply_seq,
                    role="assistant",
                ),
                user_event(
                    opened.user_id,
                    "turn",
                    sessionId=opened.session_id,
                    turnId=str(opened.turn_id),
                    status=status.value,
                ),
            )
            keyring = keyring_of(db)
            if keyring is not None:
                await db.execute(
                    upsert_tokens(
                        [
                            token_row(
                                keyring,
                                user_id=opened.user_id,
                                session_id=opened.session_id,
                                seq=reply_seq,
                                text=text,
                            )
                        ]
                    )
                )
            await db.execute(
                statements.INSERT_REPLY,
                {
                    "session_id": opened.session_id,
                    "seq": reply_seq,
                    "user_id": opened.user_id,
                    "parent_seq": opened.user_seq,
                    **statements.sealed_content(
                        keyring,
                        user_id=opened.user_id,
                        session_id=opened.session_id,
                        seq=reply_seq,
                        content=text,
                    ),
                    "image_url": recorded.image_url,
                    "meta": meta,
                    "now": now,
                    **statements.notify_params(bus.take_notifies(db)),
                },
            )
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    return ClosedTurn(reply_seq=reply_seq, image_url=recorded.image_url, status=status.value)


def _context_opener(
    db: AsyncSession, user_id: uuid.UUID, session_id: str
) -> Callable[[int, Any, str | None, str], str]:
    """Opens context messages read as JSON (a sealed bytea arrives as '\\x…' text)."""

    def open_content(seq: int, sealed: Any, key_id: str | None, plain: str) -> str:
        if isinstance(sealed, str):
            sealed = bytes.fromhex(sealed.removeprefix("\\x"))
        return open_message(db, user_id, session_id, seq, sealed, key_id, plain)

    return open_content


@dataclass(frozen=True)
class _TurnRef:
    id: uuid.UUID
    user_id: uuid.UUID
    session_id: str
    user_seq: int


@dataclass(frozen=True)
class _BusyTurn(_TurnRef):
    """The turn generating on a session, as step 1 finds it beside the session lock."""

    idempotency_key: str | None
    request_hash: str | None


async def _mark_failed(
    db: AsyncSession,
    bus: EventBus,
    *,
    turn: ChatTurn | _TurnRef,
    problem: dict[str, Any],
    now: datetime,
    partial: str | None = None,
    usage: Usage | None = None,
) -> bool:
    # With encryption on, a failed turn keeps no partial reply: it would stay in plaintext.
    if keyring_of(db) is not None:
        kept: Any = None
    else:
        kept = partial if partial is not None else ChatTurn.partial_reply
    failed = await db.execute(
        sa.update(ChatTurn)
        .where(col(ChatTurn.id) == turn.id, col(ChatTurn.status) == TurnStatus.GENERATING)
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
    await db.execute(
        owned_update(ChatMessage, turn.user_id)
        .where(
            col(ChatMessage.session_id) == turn.session_id,
            col(ChatMessage.seq) == turn.user_seq,
        )
        .values(
            meta=col(ChatMessage.meta).op("||")(
                sa.func.jsonb_build_object("assistantError", str(problem.get("detail", "")))
            )
        )
    )
    bus.stage(
        db,
        user_event(
            turn.user_id,
            "turn",
            sessionId=turn.session_id,
            turnId=str(turn.id),
            status=TurnStatus.FAILED.value,
        ),
    )
    return True


async def fail_turn(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    opened: OpenedTurn,
    problem: dict[str, Any],
    partial: str,
    usage: Usage | None,
    now: datetime,
) -> bool:
    """Ends a turn without a reply. The user's message stays; the turn keeps the reason."""
    async with sessionmaker() as db:
        turn = _TurnRef(opened.turn_id, opened.user_id, opened.session_id, opened.user_seq)
        try:
            changed = await _mark_failed(
                db, bus, turn=turn, problem=problem, now=now, partial=partial or None, usage=usage
            )
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    return changed


@dataclass(frozen=True)
class CheckpointItem:
    turn_id: uuid.UUID
    user_id: uuid.UUID
    session_id: str
    text: str | None  # None: unchanged since the last checkpoint (heartbeat only)


@dataclass(frozen=True)
class CheckpointResult:
    alive: frozenset[uuid.UUID]  # still generating here
    cancel_requested: frozenset[uuid.UUID]
    saved: frozenset[uuid.UUID] = frozenset()  # whose partial reply was written


async def checkpoint(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    items: Sequence[CheckpointItem],
    now: datetime,
    partial_timeout_seconds: float,
) -> CheckpointResult:
    """The heartbeat of every turn generating in this process, then their partial replies.

    The heartbeat is a small statement of its own, committed first: it proves the process
    alive and learns which turns someone asked to stop. The partial replies follow in a
    transaction of their own, given at most `partial_timeout_seconds` (a lock or a slow
    write fails them alone: they are written again at the next checkpoint), so a write of
    partial text never makes a healthy turn look stale to another instance.
    """
    async with sessionmaker() as db:
        try:
            rows = (
                await db.execute(
                    statements.HEARTBEAT,
                    {"now": now, "ids": [str(i.turn_id) for i in items]},
                )
            ).all()
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    alive = {uuid.UUID(str(r.id)) for r in rows}
    cancel = {uuid.UUID(str(r.id)) for r in rows if r.cancel}
    changed = [i for i in items if i.text is not None and i.turn_id in alive]
    saved: set[uuid.UUID] = set()
    if changed:
        try:
            saved = await _save_partials(
                sessionmaker=sessionmaker, bus=bus, items=changed, seconds=partial_timeout_seconds
            )
        except Exception as exc:  # written again at the next checkpoint
            logger.warning("saving partial replies failed: %s", exc)
    return CheckpointResult(
        alive=frozenset(alive), cancel_requested=frozenset(cancel), saved=frozenset(saved)
    )


async def _save_partials(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    items: Sequence[CheckpointItem],
    seconds: float,
) -> set[uuid.UUID]:
    async with sessionmaker() as db:
        try:
            limit = f"{max(1, int(seconds * 1000))}ms"
            await db.execute(statements.LIMIT_TRANSACTION, {"limit": limit})
            rows = (
                await db.execute(
                    statements.SAVE_PARTIALS,
                    {"ids": [str(i.turn_id) for i in items], "texts": [i.text for i in items]},
                )
            ).all()
            saved = {uuid.UUID(str(r.id)) for r in rows}
            for item in items:
                if item.turn_id in saved and item.text is not None:
                    bus.stage(
                        db,
                        user_event(
                            item.user_id,
                            "turn_progress",
                            turnId=str(item.turn_id),
                            length=len(item.text),
                        ),
                    )
            await commit(db, bus)
        except BaseException:
            await roll_back(db, bus)
            raise
    return saved


async def fail_stale_turns(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    now: datetime,
    stale_seconds: float,
    limit: int = 500,
) -> int:
    """Fail turns whose process went silent (killed, frozen, partitioned)."""
    cutoff = now - timedelta(seconds=stale_seconds)
    async with sessionmaker() as db:
        stale = (
            (
                await db.execute(
                    sa.select(ChatTurn)
                    .where(
                        col(ChatTurn.status) == TurnStatus.GENERATING,
                        col(ChatTurn.heartbeat_at) < cutoff,
                    )
                    .order_by(col(ChatTurn.heartbeat_at))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            .scalars()
            .all()
        )
        count = 0
        for turn in stale:
            if await _mark_failed(
                db, bus, turn=turn, problem=interrupted_problem(turn.session_id), now=now
            ):
                count += 1
        await commit(db, bus)
    return count


async def owned_turn(
    *, db: AsyncSession, user_id: uuid.UUID, session_id: str, turn_id: str
) -> ChatTurn | None:
    """A turn by id, session AND owner, or nothing: another user's turn is a missing one."""
    try:
        parsed = uuid.UUID(turn_id)
    except ValueError:
        return None
    stmt = owned(ChatTurn, user_id).where(
        col(ChatTurn.id) == parsed, col(ChatTurn.session_id) == session_id
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def active_turn(*, db: AsyncSession, user_id: uuid.UUID, session_id: str) -> ChatTurn | None:
    stmt = owned(ChatTurn, user_id).where(
        col(ChatTurn.session_id) == session_id, col(ChatTurn.status) == TurnStatus.GENERATING
    )
    return (await db.execute(stmt)).scalar_one_or_none()


async def request_stop(
    *, db: AsyncSession, bus: EventBus, turn: ChatTurn, now: datetime
) -> ChatTurn:
    """Ask the process running `turn` to stop it (it keeps what was written)."""
    if turn.status == TurnStatus.GENERATING and turn.cancel_requested_at is None:
        turn.cancel_requested_at = now
        await db.flush()
        bus.stage(db, user_event(turn.user_id, "turn_cancel", turnId=str(turn.id)))
    return turn


@dataclass(frozen=True)
class TurnSnapshot:
    """A turn as stored, with the part of its text after `offset`."""

    turn: ChatTurn
    tail: str  # the text after `offset`: the final reply once finished, else the partial
    length: int  # the whole text's length
    image_url: str | None
    reply_seq: int | None
    truncated: bool = False  # the reply was cut at MAX_REPLY_CHARS


async def snapshot(
    *, db: AsyncSession, user_id: uuid.UUID, turn_id: uuid.UUID, offset: int
) -> TurnSnapshot | None:
    turn = (
        await db.execute(
            owned(ChatTurn, user_id)
            .where(col(ChatTurn.id) == turn_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if turn is None:
        return None
    if turn.status in (TurnStatus.DONE, TurnStatus.STOPPED) and turn.reply_seq is not None:
        row = (
            await db.execute(
                owned(
                    ChatMessage,
                    user_id,
                    sa.func.substr(col(ChatMessage.content), offset + 1),
                    sa.func.length(col(ChatMessage.content)),
                    col(ChatMessage.image_url),
                    col(ChatMessage.content_sealed),
                    col(ChatMessage.key_id),
                    col(ChatMessage.meta)["truncated"].as_boolean(),
                ).where(
                    col(ChatMessage.session_id) == turn.session_id,
                    col(ChatMessage.seq) == turn.reply_seq,
                )
            )
        ).one_or_none()
        if row is None:  # the conversation was deleted meanwhile
            return None
        if row[4] is not None:  # sealed: the whole reply is opened, then cut here
            reply = open_message(db, turn.user_id, turn.session_id, turn.reply_seq, row[3], row[4])
            return TurnSnapshot(
                turn, reply[offset:], len(reply), row[2], turn.reply_seq, bool(row[5])
            )
        return TurnSnapshot(
            turn, row[0] or "", int(row[1] or 0), row[2], turn.reply_seq, bool(row[5])
        )
    partial = turn.partial_reply or ""
    return TurnSnapshot(turn, partial[offset:], len(partial), None, None)


def usage_of(turn: ChatTurn) -> Usage | None:
    if turn.prompt_tokens is None and turn.completion_tokens is None:
        return None
    return Usage(turn.prompt_tokens or 0, turn.completion_tokens or 0)
