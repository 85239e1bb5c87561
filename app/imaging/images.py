"""Images for drafts: where they come from (a local card, or an images API).

Generators only make bytes; `ledger.store_image` keeps them in PostgreSQL, so an image
outlives restarts and every instance can serve it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI

MAX_IMAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ImageRequest:
    title: str  # the topic
    subtitle: str  # e.g. "Facebook post"
    seed: str  # the same seed gives the same card
    prompt: str  # for a model: what to draw


@dataclass(frozen=True)
class GeneratedImage:
    content_type: str
    data: bytes
    source: str


class ImageGenerationError(Exception):
    """No image this time; the draft goes ahead without one."""


class ImageGenerator(Protocol):
    name: str

    async def generate(self, request: ImageRequest) -> GeneratedImage: ...


def sniff_content_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class CardImageGenerator:
    """Renders a titled card locally (no network)."""

    name = "card"

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        from app.imaging.cards import render_card_png

        try:
            data = await asyncio.to_thread(
                render_card_png, title=request.title, subtitle=request.subtitle, seed=request.seed
            )
        except (ValueError, OSError) as exc:
            raise ImageGenerationError(f"the card could not be drawn ({exc})") from exc
        return GeneratedImage(content_type="image/png", data=data, source=self.name)


class OpenAIImageGenerator:
    """`images.generate` of an OpenAI-compatible images API (base64 answers), via the SDK."""

    name = "openai"

    def __init__(self, *, client: AsyncOpenAI, model: str, size: str) -> None:
        self.client = client
        self.model = model
        self.size = size

    async def aclose(self) -> None:
        await self.client.close()

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        extra: dict[str, Any] = {}
        # gpt-image-* models always answer base64 and reject the parameter.
        if not self.model.startswith("gpt-image"):
            extra["response_format"] = "b64_json"
        try:
            answer = await self.client.images.generate(
                model=self.model, prompt=request.prompt, n=1, size=self.size, **extra
            )
        except openai.APITimeoutError as exc:
            raise ImageGenerationError("the image service did not answer in time") from exc
        except openai.APIStatusError as exc:
            raise ImageGenerationError(
                f"the image service answered HTTP {exc.status_code}"
            ) from exc
        except openai.OpenAIError as exc:
            raise ImageGenerationError("the image service could not be reached") from exc
        try:
            encoded = answer.data[0].b64_json if answer.data else None
            if not isinstance(encoded, str):
                raise TypeError("b64_json is not a string")
            if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
                raise ImageGenerationError("the image service sent an image that is too large")
            data = base64.b64decode(encoded, validate=True)
        except (IndexError, TypeError, binascii.Error) as exc:
            raise ImageGenerationError("the image service sent no usable image") from exc
        content_type = sniff_content_type(data)
        if content_type is None:
            raise ImageGenerationError("the image service sent something that is not an image")
        return GeneratedImage(content_type=content_type, data=data, source=self.name)
