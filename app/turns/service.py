"""The chat turn's public names, gathered from the modules that hold them by idea:

    opening      step 1: admission of a message, idempotency, the opening transaction
    closing      step 3: the reply and the turn's end, or its failure
    checkpoints  heartbeats and partial replies of the turns generating here
    recovery     the stale sweep
    following    what followers and other requests read of a turn; stop requests
    problems     the errors and problem bodies of a turn that cannot go on
    repository   the turn's SQL (the only place it is written)

Code in this package imports the module it needs; this one keeps `app.turns.service`
a stable entry point for other packages.
"""

from __future__ import annotations

from app.turns.checkpoints import CheckpointItem, CheckpointResult, checkpoint
from app.turns.closing import ClosedTurn, close_turn, fail_turn
from app.turns.following import (
    TurnSnapshot,
    active_turn,
    owned_turn,
    request_stop,
    snapshot,
    usage_of,
)
from app.turns.opening import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    ExistingTurn,
    OpenedTurn,
    TurnRequest,
    legacy_request_hash,
    open_turn,
    request_hash,
    request_hash_key,
    validate_idempotency_key,
)
from app.turns.problems import (
    TURN_RETRY_AFTER_SECONDS,
    IdempotencyKeyReusedError,
    SessionGoneError,
    SessionNotActiveError,
    TurnInProgressError,
    TurnLostError,
    deleted_problem,
    interrupted_problem,
)
from app.turns.recovery import fail_stale_turns

__all__ = [
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "TURN_RETRY_AFTER_SECONDS",
    "CheckpointItem",
    "CheckpointResult",
    "ClosedTurn",
    "ExistingTurn",
    "IdempotencyKeyReusedError",
    "OpenedTurn",
    "SessionGoneError",
    "SessionNotActiveError",
    "TurnInProgressError",
    "TurnLostError",
    "TurnRequest",
    "TurnSnapshot",
    "active_turn",
    "checkpoint",
    "close_turn",
    "deleted_problem",
    "fail_stale_turns",
    "fail_turn",
    "interrupted_problem",
    "legacy_request_hash",
    "open_turn",
    "owned_turn",
    "request_hash",
    "request_hash_key",
    "request_stop",
    "snapshot",
    "usage_of",
    "validate_idempotency_key",
]
