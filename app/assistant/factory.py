"""Builds the assistant ASSISTANT_BACKEND names, with its writer, images and publisher."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from app.assistant.base import Assistant, Writer
from app.assistant.builtin import DraftingAssistant, TemplateWriter
from app.assistant.catalog import BUILTIN_MODEL_NAME, ModelChoice, choice_for, models_of
from app.core.config import ModelConfig, Settings
from app.drafts.publisher import LocalPublisher, Publisher, WebhookPublisher
from app.imaging.images import CardImageGenerator, ImageGenerator, OpenAIImageGenerator

logger = logging.getLogger("app.assistant")


def build_publisher(settings: Settings) -> Publisher:
    if settings.publish_backend == "webhook":
        if not settings.publish_webhook_url or not settings.publish_webhook_secret:
            raise ValueError(
                "PUBLISH_BACKEND=webhook needs PUBLISH_WEBHOOK_URL and PUBLISH_WEBHOOK_SECRET"
            )
        return WebhookPublisher(
            url=settings.publish_webhook_url,
            secret=settings.publish_webhook_secret,
            timeout_seconds=settings.publish_webhook_timeout_seconds,
        )
    return LocalPublisher()


def build_images(settings: Settings) -> ImageGenerator:
    if settings.image_base_url:
        from app.assistant.openai_compat import build_client

        return OpenAIImageGenerator(
            client=build_client(
                base_url=settings.image_base_url,
                api_key=settings.image_api_key,
                auth_header="Authorization",
                timeout_seconds=settings.image_timeout_seconds,
                max_retries=settings.llm_max_retries,
            ),
            model=settings.image_model,
            size=settings.image_size,
        )
    return CardImageGenerator()


def build_writer(settings: Settings) -> Writer:
    if settings.assistant_backend == "openai":
        from app.assistant.openai_compat import LlmWriter

        return LlmWriter.from_settings(settings)
    if settings.assistant_backend == "local":
        from app.assistant.local_model import LocalModelUnavailable, LocalWriter

        try:
            return LocalWriter.from_settings(settings)
        except LocalModelUnavailable as exc:
            if "assistant_backend" in settings.model_fields_set:
                raise ValueError(f"ASSISTANT_BACKEND=local: {exc}") from exc
            # The default, on an install without the model: say so once, and go on without.
            logger.warning("%s; the assistant runs without a language model", exc)
    return TemplateWriter()


def build_model(settings: Settings, entry: ModelConfig) -> ModelChoice:
    """One more model of MODELS, under its id and name."""
    writer: Writer
    if entry.backend == "openai":
        from app.assistant.openai_compat import LlmWriter, build_client

        assert entry.base_url  # Settings checks it
        writer = LlmWriter(
            client=build_client(
                base_url=entry.base_url,
                api_key=os.environ.get(entry.api_key_env) if entry.api_key_env else None,
                auth_header=entry.auth_header,
                timeout_seconds=settings.llm_timeout_seconds,
                max_retries=settings.llm_max_retries,
                keepalive_seconds=settings.llm_keepalive_seconds,
            ),
            model=entry.model or entry.id,
            temperature=settings.llm_temperature,
            decides_intents=(entry.intents or settings.llm_intents) == "model",
            max_reply_chars=settings.max_reply_chars,
        )
    elif entry.backend == "local":
        from app.assistant.local_model import LocalModelUnavailable, LocalWriter

        try:
            writer = LocalWriter.from_settings(settings)
        except LocalModelUnavailable as exc:
            raise ValueError(f"MODELS: {entry.id!r}: {exc}") from exc
    else:
        writer = TemplateWriter()
    return choice_for(writer, id=entry.id, name=entry.name)


def build_assistant(settings: Settings) -> Assistant:
    """The assistant chosen by ASSISTANT_BACKEND (local | openai | builtin), with the
    models MODELS adds for conversations to choose."""
    return DraftingAssistant(
        writer=build_writer(settings),
        images=build_images(settings),
        publisher=build_publisher(settings),
        more_models=[build_model(settings, entry) for entry in settings.models],
    )


async def close_assistant(assistant: object) -> None:
    """Close the HTTP clients an assistant holds (one shared pool per app), and every
    model's."""
    writers: list[Any] = [m.writer for m in models_of(assistant)]
    for part in (
        *(writers or [getattr(assistant, "writer", None)]),
        getattr(assistant, "images", None),
    ):
        close = getattr(part, "aclose", None)
        if close is not None and part is not assistant:
            await close()


@dataclass(frozen=True)
class AssistantInfo:
    """What the page tells users about who answers them (never a setting's name)."""

    backend: str
    model: str | None  # None: no language model
    label: str
    local: bool


def describe_assistant(assistant: Any) -> AssistantInfo:
    writer = getattr(assistant, "writer", assistant)
    return AssistantInfo(
        backend=getattr(writer, "name", "builtin"),
        model=getattr(writer, "model_name", None),
        label=getattr(writer, "label", TemplateWriter.label),
        local=bool(getattr(writer, "runs_here", False)),
    )


def offered_models(assistant: Any) -> list[ModelChoice]:
    """The models clients may name (`GET /api/models`, `GET /v1/models`), the default
    first: the assistant's models, or for an assistant with no choice of model the one
    that answers, under its backend's name."""
    models = models_of(assistant)
    if models:
        return models
    info = describe_assistant(assistant)
    return [
        ModelChoice(
            id=info.backend,
            name=info.model or BUILTIN_MODEL_NAME,
            label=info.label,
            backend=info.backend,
            local=info.local,
            writer=getattr(assistant, "writer", assistant),
        )
    ]
