"""What a turn answers when it cannot go on: the errors step 1 raises, and the problem
bodies a turn that ended without a reply keeps (and streams to its followers)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.errors import ConflictError, InvalidInputError, NotFoundError, problem_body
from app.events.bus import Event, user_event
from app.turns.models import TurnStatus

TURN_RETRY_AFTER_SECONDS = 2


class TurnInProgressError(ConflictError):
    code = "turn_in_progress"
    title = "A reply is still being written"


class IdempotencyKeyReusedError(InvalidInputError):
    code = "idempotency_key_reused"


class SessionNotActiveError(ConflictError):
    code = "session_not_active"
    title = "The conversation is not open"


class TurnLostError(Exception):
    """The turn was failed elsewhere (declared stale) before this process could close it."""


class SessionGoneError(TurnLostError):
    """The conversation was deleted while the model wrote."""


def no_session() -> NotFoundError:
    return NotFoundError("No conversation with this id.", code="session_not_found")


def no_message() -> NotFoundError:
    return NotFoundError("No message with this seq in this conversation.", code="message_not_found")


def in_progress(turn_id: uuid.UUID, session_id: str) -> TurnInProgressError:
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


def failed_event(user_id: uuid.UUID, session_id: str, turn_id: uuid.UUID) -> Event:
    """The live event of a turn that ended without a reply."""
    return user_event(
        user_id,
        "turn",
        sessionId=session_id,
        turnId=str(turn_id),
        status=TurnStatus.FAILED.value,
    )
