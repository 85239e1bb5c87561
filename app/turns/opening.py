"""Step 1 of a chat turn: open it, in one short transaction.

    open_turn    lock the session row, append the user's message (`seq` n), record the
                 turn (`generating`), let the assistant read what it needs, commit. No
                 model has been called yet.

A conversation has at most one turn generating (a partial unique index says so), so `seq`
runs 1..n without gaps: a second message while a reply is generating gets
`409 turn_in_progress` with `Retry-After`. A turn whose process stopped sending heartbeats
for TURN_STALE_SECONDS is failed by the next turn on that conversation that finds it.

A request with an Idempotency-Key opens at most one turn: a retry finds the turn its key
opened (`ExistingTurn`), a different request under the same key is refused.

The turn owns its transactions, as background jobs do: it commits through the unit of
work (`app.core.db.commit`), so that live events leave exactly when their rows are
committed. Its SQL is in `app.turns.repository`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant.base import Assistant, HistoryMessage, TurnInput, summary_writer
from app.conversations import paths, summaries
from app.conversations.ids import is_well_formed, new_session_id
from app.conversations.models import MessageRole, SessionStatus
from app.conversations.service import ContextLimits, title_from_message
from app.core.db import commit, roll_back
from app.core.errors import InvalidInputError
from app.events.bus import EventBus, user_event
from app.turns.models import ChatTurn, TurnStatus
from app.turns.problems import (
    IdempotencyKeyReusedError,
    SessionNotActiveError,
    failed_event,
    in_progress,
    interrupted_problem,
    no_message,
    no_session,
)
from app.turns.repository import TurnRepository

MAX_IDEMPOTENCY_KEY_CHARS = 200


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
    # A new message under this one of the session rather than under its head (a client of
    # /v1 that resent a stored path; null: the head).
    parent_seq: int | None = None
    # The message's path hash (`app.conversations.paths`), when the caller knows it (/v1);
    # else it is chained here on its parent's. `path_key` keys the chain; null: no hashes.
    path_hash: bytes | None = None
    path_key: bytes | None = None
    # More of the message's metadata (what a client of /v1 sent beside the text).
    message_meta: dict[str, Any] | None = None
    # A new conversation: the name of the API key it is started with.
    api_client: str | None = None
    # The model asked for (a known id): a new session takes it, an existing one switches.
    model: str | None = None
    # Continue the named conversation even when archived (restore it first); an unknown
    # one is then a 404 instead of a new conversation.
    restore: bool = False
    # Start a temporary conversation (a new one only: see `ChatSession.temporary`).
    temporary: bool = False


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
    # The asking message's path hash and the key that chains the reply's onto it.
    user_path_hash: bytes | None = None
    path_key: bytes | None = None
    # The context budget the turn was opened with (the work after it reads it again).
    limits: ContextLimits | None = None


@dataclass(frozen=True)
class ExistingTurn:
    """What an idempotent retry finds: the turn its key opened before."""

    turn_id: uuid.UUID
    session_id: str


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


@dataclass(frozen=True)
class _BusyTurn:
    """The turn generating on a session, as step 1 finds it beside the session lock."""

    id: uuid.UUID
    session_id: str
    user_seq: int
    idempotency_key: str | None
    request_hash: str | None


def _existing(found: ChatTurn | _BusyTurn, request: TurnRequest) -> ExistingTurn:
    if found.request_hash not in {request.request_hash, request.legacy_request_hash}:
        raise IdempotencyKeyReusedError(
            "This Idempotency-Key was already used for a different request. "
            "Use a new key for a new message.",
            extra={"turnId": str(found.id), "sessionId": found.session_id},
        )
    return ExistingTurn(turn_id=found.id, session_id=found.session_id)


async def _restore(
    db: AsyncSession,
    bus: EventBus,
    repo: TurnRepository,
    request: TurnRequest,
    status: SessionStatus | str,
) -> None:
    """An archived (or expired) conversation the user writes in becomes active again; one
    in the trash stays there (restoring it is History's explicit step)."""
    assert request.session_id is not None
    if status == SessionStatus.TRASHED:
        raise SessionNotActiveError(
            "This conversation is in the trash; restore it from History to continue it.",
            code="session_trashed",
            extra={"sessionId": request.session_id},
        )
    if status == SessionStatus.ACTIVE:
        return  # expired but not yet archived by the sweeper: it simply goes on
    await repo.restore_session(request.session_id)
    bus.stage(
        db,
        user_event(request.user_id, "session", sessionId=request.session_id, change="restored"),
    )


def _check_target(request: TurnRequest, row: Any) -> None:
    """An edit names a user message; a regenerate an assistant message that answers a user
    message, or a user message. Anything else writes nothing."""
    if row.target_role is None:
        raise no_message()
    if request.edit_seq is not None and row.target_role != MessageRole.USER:
        raise InvalidInputError(
            "Only a user message can be edited; regenerate an assistant message instead.",
            code="not_a_user_message",
        )
    if request.regenerate_seq is not None and row.asked_role != MessageRole.USER:
        raise InvalidInputError(
            "Only a reply to a user message, or a user message, can be regenerated.",
            code="not_regenerable",
        )


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
    repo = TurnRepository(db, request.user_id)
    try:
        return await _open(
            db=db,
            repo=repo,
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
            found = await repo.by_idempotency_key(request.idempotency_key)
            if found is not None:
                return _existing(found, request)
        if request.session_id is not None:
            busy = await repo.generating(request.session_id)
            if busy is not None:
                raise in_progress(busy.id, busy.session_id) from None
        raise
    except BaseException:
        await roll_back(db, bus)
        raise


async def _open(
    *,
    db: AsyncSession,
    repo: TurnRepository,
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
        found = await repo.by_idempotency_key(request.idempotency_key)
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
    dropped_through: int | None = None
    target_seq = request.edit_seq if request.edit_seq is not None else request.regenerate_seq
    regenerate = request.regenerate_seq is not None
    # The message's path hash: given (/v1), or chained on its parent's here (unknown when
    # the parent has none: written before path hashes, or imported).
    path_hash = request.path_hash
    chain_on: tuple[bytes | None] | None = (None,)  # a first message chains on nothing
    model = request.model
    temporary = request.temporary
    if request.session_id is not None and is_well_formed(request.session_id):
        # Unknown, ill-formed and another user's ids all end here as None: same query,
        # same answer (a new session), nothing about the other session revealed.
        locked = await repo.lock_session(request.session_id)
        closed = locked is not None and (
            locked.status != SessionStatus.ACTIVE
            or locked.last_activity_at < now - timedelta(seconds=ttl_seconds)
        )
        if locked is not None and closed and request.restore:
            await _restore(db, bus, repo, request, locked.status)
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
                await repo.archive_session(request.session_id, now=now)
                if not locked.temporary:
                    bus.stage(
                        db,
                        user_event(
                            user_id, "session", sessionId=request.session_id, change="archived"
                        ),
                    )
            expired_id = request.session_id
            model = request.model or locked.model  # the new conversation keeps its model
            # ... and a temporary one's successor is temporary too (the sweep deletes both).
            temporary = temporary or bool(locked.temporary)
        elif locked is not None:
            session_id, seq = request.session_id, locked.message_count + 1
            model = request.model or locked.model
            busy_row = await repo.busy_turn_and_context(
                session_id,
                limit=limits.max_messages,
                head_seq=(
                    request.parent_seq if request.parent_seq is not None else locked.head_seq
                ),
                target_seq=target_seq,
                regenerate=regenerate,
            )
            if target_seq is not None:
                _check_target(request, busy_row)
            parent_seq = busy_row.parent_seq
            if parent_seq is not None and busy_row.parent_role != MessageRole.SYSTEM:
                parent_hash = busy_row.parent_path_hash
                chain_on = (bytes(parent_hash),) if parent_hash is not None else None
            if regenerate:
                chain_on = None
                if path_hash is None and busy_row.asked_path_hash is not None:
                    path_hash = bytes(busy_row.asked_path_hash)
                seq = busy_row.asked_seq
                message = repo.asked_message(session_id, busy_row)
                expected_head = locked.head_seq
            else:
                expected_head = seq
            fitted = repo.context(session_id, busy_row, limits)
            history, dropped_through = fitted.messages, fitted.dropped_through
            if busy_row.turn_id is not None:
                busy = _BusyTurn(
                    id=busy_row.turn_id,
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
                    raise in_progress(busy.id, session_id)
                problem = interrupted_problem(session_id)
                if await repo.mark_failed(
                    turn_id=busy.id,
                    session_id=session_id,
                    user_seq=busy.user_seq,
                    problem=problem,
                    now=now,
                ):
                    bus.stage(db, failed_event(user_id, session_id, busy.id))
    if (target_seq is not None or request.restore) and session_id is None:
        raise no_session()

    if path_hash is None and request.path_key is not None and chain_on is not None:
        path_hash = paths.chain(request.path_key, chain_on[0], MessageRole.USER.value, message)
    turn_id = uuid.uuid4()
    meta: dict[str, Any] = dict(request.message_meta or {})
    if request.context:
        meta["context"] = request.context
    params: dict[str, Any] = {
        "meta": meta,
        "path_hash": path_hash,
        "api_client": request.api_client,
        "temporary": temporary,
        "now": now,
        "turn_id": turn_id,
        "assistant": assistant.name,
        "expired_session_id": expired_id,
        "idempotency_key": request.idempotency_key,
        "request_hash": request.request_hash,
        "model": model,
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
        model=model,
        dropped_through=dropped_through,
    )
    if dropped_through is not None and summary_writer(assistant, turn_input) is not None:
        # The budget drops part of the path and the model reads summaries: the newest
        # stored through a dropped message goes in its place (one more statement, only here).
        summary = await summaries.usable(
            session=db, user_id=user_id, session_id=session_id, dropped_through=dropped_through
        )
        if summary is not None:
            turn_input = dataclasses.replace(
                turn_input, summary=summary.text, summarised_through=summary.through_seq
            )
    # The assistant only reads here (under the session lock), so it may read before the
    # rows go in, and the rows' statement can carry the events.
    prepared = await assistant.prepare(db=db, turn=turn_input)

    if created and not temporary:  # a temporary one is no other device's business
        bus.stage(db, user_event(user_id, "session", sessionId=session_id, change="created"))
    if not regenerate:
        bus.stage(
            db,
            user_event(
                user_id, "message", sessionId=session_id, seq=seq, role=MessageRole.USER.value
            ),
        )
    bus.stage(
        db,
        user_event(
            user_id,
            "turn",
            sessionId=session_id,
            turnId=str(turn_id),
            status=TurnStatus.GENERATING.value,
        ),
    )
    params |= {"session_id": session_id, "seq": seq, "parent_seq": parent_seq}
    payloads = bus.take_notifies(db)
    if regenerate:  # the stored message is answered again: no message is written
        await repo.open_regenerate(params, payloads=payloads)
    else:
        await repo.open_with_message(
            params,
            session_id=session_id,
            seq=seq,
            message=request.message,
            title=title_from_message(request.message) if created else None,
            payloads=payloads,
        )
    await commit(db, bus)
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
        user_path_hash=path_hash,
        path_key=request.path_key,
        limits=limits,
    )
