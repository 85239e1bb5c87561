"""The models `/v1` offers, and the assistant that answers one of its requests.

Each configured backend is one `V1Model`; `configured_models` lists them. A language model
that speaks the Chat Completions API (ASSISTANT_BACKEND=openai, or the local model) gets the
client's request as it is (messages, sampling, `tools`, `tool_choice`); the built-in
assistant, which has no such model, answers the last message as on the page. More models
are more entries in the list.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant.base import (
    Assistant,
    AssistantError,
    RecordedReply,
    ReplyOutput,
    TextAssistant,
    TurnInput,
)
from app.assistant.factory import describe_assistant
from app.assistant.openai_compat import LlmWriter

ASSISTANT_NAME = "api"

Connect = Callable[[ReplyOutput], contextlib.AbstractAsyncContextManager[LlmWriter]]


@dataclass(frozen=True)
class ApiOutcome:
    """What the model answered besides its text: the calls of the client's tools."""

    tool_calls: list[dict[str, Any]]
    finish_reason: str | None


class ClientRequestAssistant(TextAssistant):
    """Answers one request of `/v1/chat/completions`: the client's body goes to the model
    as it came, and the text comes back as it is written. Keeps no records of its own; a
    reply that called tools carries the calls in its metadata (`toolCalls`)."""

    name = ASSISTANT_NAME

    def __init__(self, *, connect: Connect, body: dict[str, Any], model: str) -> None:
        self.connect = connect
        self.body = body
        self.model = model

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        async with self.connect(out) as writer:
            completion = await writer.stream_body(self.body, out=out, on_text=out.write)
        calls = [
            {
                "id": call.id or f"call_{turn.session_id}_{turn.message_seq}_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for index, call in sorted(completion.tool_calls.items())
        ]
        out.set_outcome(ApiOutcome(tool_calls=calls, finish_reason=completion.finish_reason))
        if not out.text and not calls:
            raise AssistantError("The language model answered with an empty message")

    async def record(
        self, *, db: AsyncSession, turn: TurnInput, prepared: Any, outcome: Any, stopped: bool
    ) -> RecordedReply:
        meta: dict[str, Any] = {"model": self.model}
        if isinstance(outcome, ApiOutcome) and outcome.tool_calls and not stopped:
            meta["toolCalls"] = outcome.tool_calls
        return RecordedReply(metadata=meta)


@dataclass(frozen=True)
class V1Model:
    """One model `/v1` offers: its id, and how a request to it is answered."""

    id: str
    owned_by: str
    connect: Connect | None  # None: the app's own assistant answers
    app_assistant: Assistant

    def assistant_for(self, body: dict[str, Any]) -> Assistant:
        if self.connect is None:
            return self.app_assistant
        return ClientRequestAssistant(connect=self.connect, body=body, model=self.id)


def _remote(writer: LlmWriter) -> Connect:
    @contextlib.asynccontextmanager
    async def connect(out: ReplyOutput) -> AsyncIterator[LlmWriter]:
        yield writer

    return connect


def _local(writer: Any) -> Connect:
    """The local model: in its queue (one reply per slot), started on first use."""

    @contextlib.asynccontextmanager
    async def connect(out: ReplyOutput) -> AsyncIterator[LlmWriter]:
        async with writer.queue.turn(out):
            yield await writer.started()

    return connect


def configured_models(assistant: Assistant) -> list[V1Model]:
    """The models of this app, from the assistant ASSISTANT_BACKEND built."""
    writer = getattr(assistant, "writer", None)
    if isinstance(writer, LlmWriter):
        return [V1Model(writer.model_name, "chatkeep", _remote(writer), assistant)]
    if writer is not None and hasattr(writer, "started") and hasattr(writer, "queue"):
        return [V1Model(str(writer.model_name), "chatkeep", _local(writer), assistant)]
    info = describe_assistant(assistant)
    return [V1Model(f"chatkeep-{info.backend}", "chatkeep", None, assistant)]


def find_model(assistant: Assistant, model_id: str) -> V1Model | None:
    return next((m for m in configured_models(assistant) if m.id == model_id), None)
