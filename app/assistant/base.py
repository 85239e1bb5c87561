"""The seam between a chat turn and whatever writes the replies.

A turn runs an assistant in three steps, and the database is only open in the first and
the last:

1. `prepare(db=..., turn=...)` runs inside the short transaction that opens the turn. It
   reads what the reply will need (the draft ledger, say) and returns it.
2. `generate(turn=..., prepared=..., out=...)` runs with no database connection held. It
   calls the model, draws images, publishes, and writes the reply to `out` as it goes:
   every `out.write` is a delta the client sees at once.
3. `record(db=..., turn=..., prepared=..., outcome=...)` runs inside the short transaction
   that closes the turn. It writes the assistant's own records (drafts, posts) and returns
   the reply's image and metadata. The reply's text is exactly what was written to `out`.

A stopped or timed-out turn still reaches `record`, with whatever `out.outcome` holds:
an assistant sets its outcome only once the effect it describes is complete, so a draft cut
off half-way is never recorded.

The drafting assistant (`builtin.DraftingAssistant`) has a second seam, for who writes the
words: a `Writer` gets a `DraftRequest` and returns a `WrittenDraft`. The built-in
templates (`builtin.TemplateWriter`) and a language model (`openai_compat.LlmWriter`) are
the two writers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.conversations.context import HistoryMessage

if TYPE_CHECKING:
    from app.assistant.intents import Intent
    from app.drafts.ledger import LedgerState

__all__ = ["HistoryMessage"]  # what an assistant reads of a conversation (re-exported)


@dataclass(frozen=True)
class TurnInput:
    """Everything an assistant may use to answer one message.

    `history` is the bounded, server-side history before this message: the active path
    from the message's parent (`parent_seq`, null for a first message) up, oldest first.
    When the budget dropped older messages, `summary` may stand in for them: a model
    reads it as one system message before `history`.
    """

    user_id: uuid.UUID
    session_id: str
    message_seq: int
    history: Sequence[HistoryMessage]
    message: str
    context: str | None
    now: datetime
    parent_seq: int | None = None
    # The conversation's model (an id of the assistant's models); None: the default.
    model: str | None = None
    # The newest message of the path the context budget dropped (None: nothing dropped),
    # and the stored summary sent in place of the dropped part (`summary` covers the path
    # from the root through `summarised_through`; None: no summary, the part is dropped).
    dropped_through: int | None = None
    summary: str | None = None
    summarised_through: int | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def as_json(self) -> dict[str, int]:
        return {
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "totalTokens": self.prompt_tokens + self.completion_tokens,
        }


def summary_writer(assistant: Any, turn: TurnInput) -> Any:
    """The `write_summary` of the model that answers `turn`, or None when that model writes
    (and so reads) no summaries of long conversations: the built-in templates, /v1."""
    model_for = getattr(assistant, "model_for", None)
    if model_for is None:
        return None
    return getattr(model_for(turn).writer, "write_summary", None)


class ReplyOutput(Protocol):
    """Where `generate` writes. Implemented by the turn runner."""

    def write(self, text: str) -> None:
        """Append a delta to the reply."""

    @property
    def text(self) -> str:
        """The reply so far."""

    def add_usage(self, usage: Usage) -> None:
        """Count tokens a model call reported."""

    def queued(self, position: int | None) -> None:
        """The reply waits in line for the model: `position` 1 is next; None, no longer."""

    def set_outcome(self, outcome: Any) -> None:
        """What `record` should write: set it once the effect is complete."""

    def shielded(self) -> Any:
        """A context manager: a stop that arrives inside waits until it exits.

        For effects that must not be cut in half, such as a publication in flight.
        """


@dataclass
class RecordedReply:
    image_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class AssistantError(Exception):
    """The assistant could not answer; the user's message is kept all the same.

    `failure` names what went wrong with the model's server, when that is known:
    "connection_refused", "connection_reset", "timeout" or "rejected" (it answered with an
    HTTP error); None for anything else (a reply that makes no sense, an empty one).
    """

    def __init__(
        self, message: str, *, timed_out: bool = False, failure: str | None = None
    ) -> None:
        super().__init__(message)
        self.failure = "timeout" if timed_out else failure
        self.timed_out = self.failure == "timeout"


class Assistant(Protocol):
    name: str

    async def prepare(self, *, db: AsyncSession, turn: TurnInput) -> Any: ...

    async def generate(
        self,
        *,
        turn: TurnInput,
        prepared: Any,
        out: ReplyOutput,
        reader: async_sessionmaker[AsyncSession],
    ) -> None:
        """`reader` opens short read-only sessions, for data only known to be needed
        half-way (never hold one across a call to a model or another service)."""

    async def record(
        self, *, db: AsyncSession, turn: TurnInput, prepared: Any, outcome: Any, stopped: bool
    ) -> RecordedReply: ...


class TextAssistant:
    """An assistant that only writes text and keeps no records of its own."""

    name = "text"

    async def prepare(self, *, db: AsyncSession, turn: TurnInput) -> Any:
        return None

    async def generate(
        self,
        *,
        turn: TurnInput,
        prepared: Any,
        out: ReplyOutput,
        reader: async_sessionmaker[AsyncSession],
    ) -> None:
        await self.write(turn, out)

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        raise NotImplementedError

    async def record(
        self, *, db: AsyncSession, turn: TurnInput, prepared: Any, outcome: Any, stopped: bool
    ) -> RecordedReply:
        return RecordedReply()


# -- who writes a draft's words ----------------------------------------------------------


@dataclass(frozen=True)
class DraftRequest:
    """The original request, kept with the draft so it can be written again later."""

    platform: str
    topic: str
    context: str | None
    with_image: bool


@dataclass(frozen=True)
class WrittenDraft:
    text: str
    hashtags: tuple[str, ...]


class Writer(Protocol):
    name: str
    # True: the writer's model decides what the user means (`decide`); False: the rules do.
    decides_intents: bool

    async def decide(
        self, *, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> Intent | None:
        """The user's intent, or None when the model has already answered in `out`."""

    async def write_draft(
        self,
        *,
        request: DraftRequest,
        version: int,
        turn: TurnInput,
        state: LedgerState,
        out: ReplyOutput,
    ) -> WrittenDraft:
        """Write the post text to `out` as it comes, and return it."""

    async def answer(
        self, *, intent: Intent, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> None: ...
