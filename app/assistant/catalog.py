"""The models users may choose per conversation: the default one (ASSISTANT_BACKEND) and
those MODELS adds, each with the writer that speaks to it and the name users read.

A model's `id` is what a conversation and every reply record; a conversation whose model
is no longer configured is answered by the default one (and its replies say so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.assistant.base import Writer

BUILTIN_MODEL_ID = "builtin"
BUILTIN_MODEL_NAME = "Built-in templates"


@dataclass(frozen=True)
class ModelChoice:
    id: str
    name: str  # what the picker shows
    label: str  # what the page says under the message box
    backend: str  # local | openai | builtin
    local: bool  # runs on this server
    writer: Writer


def choice_for(writer: Writer, *, id: str | None = None, name: str | None = None) -> ModelChoice:
    """The model a writer speaks to, under its own id and name unless given others."""
    model_id = id or getattr(writer, "model_id", None) or BUILTIN_MODEL_ID
    model_name = getattr(writer, "model_name", None)
    return ModelChoice(
        id=model_id,
        name=name or model_name or BUILTIN_MODEL_NAME,
        label=name or str(getattr(writer, "label", BUILTIN_MODEL_NAME)),
        backend=getattr(writer, "name", BUILTIN_MODEL_ID),
        local=bool(getattr(writer, "runs_here", False)),
        writer=writer,
    )


def models_of(assistant: Any) -> list[ModelChoice]:
    """The assistant's models, the default first; none for an assistant without a choice."""
    models = getattr(assistant, "models", None)
    return list(models.values()) if isinstance(models, dict) else []


def is_known(assistant: Any, model_id: str) -> bool:
    models = getattr(assistant, "models", None)
    return isinstance(models, dict) and model_id in models
