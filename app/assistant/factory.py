"""Builds the assistant ASSISTANT_BACKEND names, with its writer, images and publisher."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app.assistant.base import Assistant, Writer
from app.assistant.builtin import DraftingAssistant, TemplateWriter
from app.core.config import Settings
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


def build_assistant(settings: Settings) -> Assistant:
    """The assistant chosen by ASSISTANT_BACKEND (local | openai | builtin)."""
    return DraftingAssistant(
        writer=build_writer(settings),
        images=build_images(settings),
        publisher=build_publisher(settings),
    )


async def close_assistant(assistant: object) -> None:
    """Close the HTTP clients an assistant holds (one shared pool per app)."""
    for part in (assistant, getattr(assistant, "writer", None), getattr(assistant, "images", None)):
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
