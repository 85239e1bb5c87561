"""The models `/v1` offers, and the assistant that answers one of its requests.

`/v1` offers the app's catalog, the models of `GET /api/models` under the same ids (the
default one, ASSISTANT_BACKEND's, first; then those of MODELS), each as a `V1Model`. A
model that speaks the Chat Completions API (an `openai` backend, or the local model) gets
the client's request as it is (messages, sampling, `tools`, `tool_choice`); the built-in
templates, which have no such model, answer the last message as on the page. Either way
the turn records the model on the conversation and on the reply, as `POST /api/chat` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant import catalog
from app.assistant.base import (
    Assistant,
    AssistantError,
    RecordedReply,
    ReplyOutput,
    TextAssistant,
    TurnInput,
)
from app.assistant.factory import describe_assistant, offered_models
from app.assistant.openai_compat import LlmWriter

ASSISTANT_NAME = "api"
OWNER = "chatkeep"

Connect = Callable[[ReplyOutput], contextlib.AbstractAsyncContextManager[LlmWriter]]
# A model's `write_title(message=..., reply=...)`: what titles a new conversation.
WriteTitle = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class ApiOutcome:
    """What the model answered besides its text: the calls of the client's tools."""

    tool_calls: list[dict[str, Any]]
    finish_reason: str | None


class ClientRequestAssistant(TextAssistant):
    """Answers one request of `/v1/chat/completions`: the client's body goes to the model
    as it came, and the text comes back as it is written. Keeps no records of its own; a
    reply that called tools carries the calls in its metadata (`toolCalls`). A new
    conversation is titled by the model's `write_title`, as on the page (app/titles reads
    it; None for a model that writes no titles)."""

    name = ASSISTANT_NAME

    def __init__(
        self,
        *,
        connect: Connect,
        body: dict[str, Any],
        model: str,
        write_title: WriteTitle | None = None,
    ) -> None:
        self.connect = connect
        self.body = body
        self.model = model
        self.write_title = write_title

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
    """One model `/v1` offers: its id (the catalog's, as `GET /api/models` lists it), and
    how a request to it is answered."""

    id: str
    owned_by: str
    connect: Connect | None  # None: the app's own assistant answers
    app_assistant: Assistant
    # What the turn records as the conversation's model: the id, or None for an assistant
    # with no choice of model (as `POST /api/chat` records nothing there either).
    chosen: str | None
    # The model's `write_title`, when it writes titles.
    write_title: WriteTitle | None = None

    def assistant_for(self, body: dict[str, Any]) -> Assistant:
        if self.connect is None:
            return self.app_assistant
        return ClientRequestAssistant(
            connect=self.connect, body=body, model=self.id, write_title=self.write_title
        )


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


def _connect(writer: Any) -> Connect | None:
    """How the client's request reaches a model's writer; None for one without a language
    model (the built-in templates), which the app's assistant answers."""
    if isinstance(writer, LlmWriter):
        return _remote(writer)
    if hasattr(writer, "started") and hasattr(writer, "queue"):
        return _local(writer)
    return None


def configured_models(assistant: Assistant) -> list[V1Model]:
    """The models of this app, the default first: the catalog of `GET /api/models`."""
    models: list[V1Model] = []
    for choice in offered_models(assistant):
        chosen = catalog.is_known(assistant, choice.id)
        connect = _connect(choice.writer) if chosen else None
        models.append(
            V1Model(
                id=choice.id,
                owned_by=OWNER,
                connect=connect,
                app_assistant=assistant,
                chosen=choice.id if chosen else None,
                write_title=getattr(choice.writer, "write_title", None) if connect else None,
            )
        )
    return models


def former_id(assistant: Assistant) -> str:
    """The id `/v1` gave the default model when it offered that one alone: its upstream
    name for a language model (the local model's display name), else `chatkeep-<backend>`.
    Still accepted, for the default model, so that older scripts keep working."""
    writer = getattr(assistant, "writer", None)
    if writer is not None and _connect(writer) is not None:
        return str(writer.model_name)
    return f"chatkeep-{describe_assistant(assistant).backend}"


def find_model(assistant: Assistant, model_id: str | None) -> V1Model | None:
    """The model a request names. No name, or the default model's former id, is the
    default model; None: no such model."""
    models = configured_models(assistant)
    found = next((m for m in models if m.id == model_id), None)
    if found is None and (model_id is None or model_id == former_id(assistant)):
        return models[0]
    return found
