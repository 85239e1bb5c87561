"""Where a confirmed draft goes: recorded locally, or also POSTed to a signed webhook.

Every publication carries an idempotency key (the draft id): a retry after a failure, or
after a crash between the webhook call and our commit, is the same publication to the
receiver, and `published_post.draft_id` is unique on our side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx

SIGNATURE_HEADER = "X-Chatkeep-Signature"
TIMESTAMP_HEADER = "X-Chatkeep-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_EXTERNAL_ID_CHARS = 500


@dataclass(frozen=True)
class OutgoingImage:
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutgoingPost:
    id: uuid.UUID
    idempotency_key: str
    user_id: uuid.UUID
    session_id: str
    draft_id: uuid.UUID
    version: int
    platform: str
    text: str
    hashtags: list[str]
    image: OutgoingImage | None
    requested_at: datetime


@dataclass(frozen=True)
class PublishResult:
    external_id: str | None = None


class PublishError(Exception):
    """The post did not go out; the draft stays pending."""


class Publisher(Protocol):
    name: str

    async def publish(self, post: OutgoingPost) -> PublishResult: ...


class LocalPublisher:
    """Records the post in Chatkeep only (it shows in `GET /api/posts`)."""

    name = "local"

    async def publish(self, post: OutgoingPost) -> PublishResult:
        return PublishResult(external_id=None)


def sign(secret: str, body: bytes) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the raw body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def webhook_body(post: OutgoingPost, *, timestamp: int) -> bytes:
    payload: dict[str, Any] = {
        "id": str(post.id),
        "idempotencyKey": post.idempotency_key,
        "timestamp": timestamp,
        "userId": str(post.user_id),
        "sessionId": post.session_id,
        "draftId": str(post.draft_id),
        "version": post.version,
        "platform": post.platform,
        "text": post.text,
        "hashtags": post.hashtags,
        "image": (
            {
                "contentType": post.image.content_type,
                "sha256": hashlib.sha256(post.image.data).hexdigest(),
                "base64": base64.b64encode(post.image.data).decode(),
            }
            if post.image is not None
            else None
        ),
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WebhookPublisher:
    """POSTs the post as signed JSON. Any 2xx is success; a JSON `id` in the answer is
    kept as the post's external id."""

    name = "webhook"

    def __init__(self, *, url: str, secret: str, timeout_seconds: float) -> None:
        self.url = url
        self.secret = secret
        self.timeout_seconds = timeout_seconds

    async def publish(self, post: OutgoingPost) -> PublishResult:
        timestamp = int(post.requested_at.timestamp())
        body = webhook_body(post, timestamp=timestamp)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.secret, body),
            TIMESTAMP_HEADER: str(timestamp),
            IDEMPOTENCY_HEADER: post.idempotency_key,
            "User-Agent": "Chatkeep-Publisher/1",
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise PublishError(
                f"the publishing service did not answer within {self.timeout_seconds:g} seconds"
            ) from exc
        except httpx.TransportError as exc:
            raise PublishError("the publishing service could not be reached") from exc
        if not response.is_success:
            raise PublishError(f"the publishing service answered HTTP {response.status_code}")
        external_id: str | None = None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("id"), str | int):
            external_id = str(answer["id"])[:MAX_EXTERNAL_ID_CHARS]
        return PublishResult(external_id=external_id)
