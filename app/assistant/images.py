"""Images for drafts: where they come from (a local card, or an images API).

Generators only make bytes; `ledger.store_image` keeps them in PostgreSQL, so an image
outlives restarts and every instance can serve it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import Protocol

from app.assistant.http import RetryPolicy, UpstreamFailure, post_json

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
        from app.assistant.cards import render_card_png

        try:
            data = await asyncio.to_thread(
                render_card_png, title=request.title, subtitle=request.subtitle, seed=request.seed
            )
        except (ValueError, OSError) as exc:
            raise ImageGenerationError(f"the card could not be drawn ({exc})") from exc
        return GeneratedImage(content_type="image/png", data=data, source=self.name)


class OpenAIImageGenerator:
    """`POST {base}/images/generations` of an OpenAI-compatible images API (b64_json)."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        size: str,
        timeout_seconds: float,
        retry: RetryPolicy,
    ) -> None:
        self.url = base_url.rstrip("/") + "/images/generations"
        self.api_key = api_key
        self.model = model
        self.size = size
        self.timeout_seconds = timeout_seconds
        self.retry = retry

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        payload: dict[str, object] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": 1,
            "size": self.size,
        }
        # gpt-image-* models always answer base64 and reject the parameter.
        if not self.model.startswith("gpt-image"):
            payload["response_format"] = "b64_json"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            body = await post_json(
                url=self.url,
                payload=payload,
                headers=headers,
                timeout_seconds=self.timeout_seconds,
                retry=self.retry,
                service="The image service",
            )
        except UpstreamFailure as exc:
            raise ImageGenerationError(str(exc)) from exc
        try:
            encoded = body["data"][0]["b64_json"]
            if not isinstance(encoded, str):
                raise TypeError("b64_json is not a string")
            if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
                raise ImageGenerationError("the image service sent an image that is too large")
            data = base64.b64decode(encoded, validate=True)
        except (KeyError, IndexError, TypeError, binascii.Error) as exc:
            raise ImageGenerationError("the image service sent no usable image") from exc
        content_type = sniff_content_type(data)
        if content_type is None:
            raise ImageGenerationError("the image service sent something that is not an image")
        return GeneratedImage(content_type=content_type, data=data, source=self.name)
