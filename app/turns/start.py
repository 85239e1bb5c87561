"""Starting a chat turn for `POST /api/chat` (a message, or with `editSeq` a new version
of one) and for a regenerated reply: check the message, claim a slot for its reply, open
the turn (or find the one its Idempotency-Key opened), start the model.

The route shapes the answer (JSON or events) from the turn this returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant import catalog
from app.conversations import paths
from app.conversations import service as conversations
from app.conversations.schemas import ChatMessageIn, ChatRequest, RegenerateRequest
from app.core.config import Settings
from app.core.errors import InvalidInputError, ServiceUnavailableError
from app.core.metrics import TURNS_REFUSED_BUSY
from app.turns import opening
from app.turns.admission import OpenSlot
from app.turns.dependencies import TurnServices

BUSY_RETRY_AFTER_SECONDS = 5


class TurnOpenCheck(Protocol):
    """Refuses a turn (raises an `AppError`) before anything of it is written."""

    async def __call__(
        self, *, db: AsyncSession, settings: Settings, user_id: uuid.UUID, now: datetime
    ) -> None: ...


# What a turn must pass to open, added by the package that owns each check (token
# budgets: app/usage), so that turns imports none of them. They run in the request's
# transaction, before the turn takes a place among the replies generating.
TURN_OPEN_CHECKS: list[TurnOpenCheck] = []


def turn_open_check(check: TurnOpenCheck) -> TurnOpenCheck:
    """Adds `check` to every turn's opening (a decorator)."""
    if check not in TURN_OPEN_CHECKS:
        TURN_OPEN_CHECKS.append(check)
    return check


def _last_user_message(messages: Sequence[ChatMessageIn]) -> str:
    last = next((m for m in reversed(messages) if m.role == "user"), None)
    if last is None:
        raise InvalidInputError(
            "`messages` holds no message with role 'user'.", code="no_user_message"
        )
    return last.content


async def start_turn(
    *,
    db: AsyncSession,
    services: TurnServices,
    slot: OpenSlot,
    user_id: uuid.UUID,
    body: ChatRequest,
    idempotency_key: str | None,
) -> uuid.UUID:
    """The id of the turn that answers this request; no connection is held on return."""
    message = conversations.validate_user_message(
        _last_user_message(body.messages), max_chars=services.settings.max_message_chars
    )
    if body.model is not None and not catalog.is_known(services.assistant, body.model):
        raise InvalidInputError(
            f"No model {body.model!r} here: GET /api/models lists them.", code="unknown_model"
        )
    if body.temporary and body.session_id is not None:
        raise InvalidInputError(
            "`temporary` starts a new conversation: send it without a `sessionId`.",
            code="temporary_needs_new_conversation",
        )
    key = opening.validate_idempotency_key(idempotency_key)
    fingerprint = body.model_dump(mode="json")
    if fingerprint["model"] is None:
        del fingerprint["model"]  # the fingerprint of a request without one stays as it was
    if not body.restore:
        del fingerprint["restore"]  # a retry from before `restore` existed hashes the same
    if not body.temporary:
        del fingerprint["temporary"]
    hashes = _hashes(services, key, fingerprint)
    return await _start(
        db=db,
        services=services,
        slot=slot,
        request=opening.TurnRequest(
            user_id=user_id,
            session_id=body.session_id,
            message=message,
            context=body.context,
            idempotency_key=key,
            request_hash=hashes[0],
            legacy_request_hash=hashes[1],
            edit_seq=body.edit_seq,
            path_key=_path_key(services),
            model=body.model,
            restore=body.restore,
            temporary=body.temporary,
        ),
    )


async def start_regenerate(
    *,
    db: AsyncSession,
    services: TurnServices,
    slot: OpenSlot,
    user_id: uuid.UUID,
    session_id: str,
    seq: int,
    body: RegenerateRequest,
    idempotency_key: str | None,
) -> uuid.UUID:
    """A new reply to the user message `seq` is, or that the assistant message `seq`
    answers; the turn's id, as `start_turn`."""
    key = opening.validate_idempotency_key(idempotency_key)
    fingerprint = {"regenerate": seq, "sessionId": session_id, **body.model_dump(mode="json")}
    hashes = _hashes(services, key, fingerprint)
    return await _start(
        db=db,
        services=services,
        slot=slot,
        request=opening.TurnRequest(
            user_id=user_id,
            session_id=session_id,
            message="",
            context=body.context,
            idempotency_key=key,
            request_hash=hashes[0],
            legacy_request_hash=hashes[1],
            regenerate_seq=seq,
            path_key=_path_key(services),
        ),
    )


def _path_key(services: TurnServices) -> bytes:
    """The key of the messages' path hashes (`app.conversations.paths`)."""
    return paths.path_hash_key(services.settings.resolved_secret_key())


def _hashes(services: TurnServices, key: str | None, payload: Any) -> tuple[str | None, str | None]:
    """The request's fingerprint (keyed) and its older plain form, when a key is sent."""
    if not key:
        return None, None
    hash_key = opening.request_hash_key(services.settings.resolved_secret_key())
    return opening.request_hash(payload, key=hash_key), opening.legacy_request_hash(payload)


async def _start(
    *, db: AsyncSession, services: TurnServices, slot: OpenSlot, request: opening.TurnRequest
) -> uuid.UUID:
    settings = services.settings
    runner = services.runner
    for check in TURN_OPEN_CHECKS:
        await check(db=db, settings=settings, user_id=request.user_id, now=services.clock.now())
    if not runner.reserve():
        TURNS_REFUSED_BUSY.inc()
        raise ServiceUnavailableError(
            "The assistant is answering as many messages as it can right now. "
            "Nothing was saved; please send again in a few seconds.",
            code="assistant_busy",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )
    try:
        opened = await opening.open_turn(
            db=db,
            bus=services.bus,
            assistant=services.assistant,
            request=request,
            now=services.clock.now(),
            ttl_seconds=settings.session_ttl_seconds,
            limits=conversations.ContextLimits(
                settings.context_max_messages, settings.context_max_chars
            ),
            stale_seconds=settings.turn_stale_seconds,
        )
    except BaseException:
        runner.release()
        raise
    if isinstance(opened, opening.ExistingTurn):
        runner.release()  # a retry joins the first turn; it starts nothing
        turn_id = opened.turn_id
    else:
        turn_id = runner.start(opened).id
    # The model may take a while: hold no connection while it writes, and let the next
    # message in line open.
    await db.close()
    slot.release()
    return turn_id


def fingerprint(
    services: TurnServices, idempotency_key: str | None, payload: Any
) -> tuple[str | None, str | None]:
    """The keyed fingerprint of a request body (and its older plain form) that an
    Idempotency-Key is checked against; none without a key."""
    return _hashes(services, idempotency_key, payload)


async def start_request(
    *, db: AsyncSession, services: TurnServices, slot: OpenSlot, request: opening.TurnRequest
) -> uuid.UUID:
    """A turn that another API built the request of (`/v1`): as `start_turn`."""
    return await _start(db=db, services=services, slot=slot, request=request)
