"""POSTing JSON to OpenAI-compatible services: timeouts, and retries that back off.

Retried: 429 (after `Retry-After` when the server sends one) and 5xx responses, and
connection failures, with exponential backoff plus jitter. Not retried: other 4xx (the
request itself is wrong: a bad key, an unknown model) and timeouts (the caller has
already waited the whole timeout once).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

logger = logging.getLogger("app.assistant.http")

MAX_RETRY_AFTER_SECONDS = 60.0
MAX_ERROR_DETAIL_CHARS = 200


class UpstreamFailure(Exception):
    """The service did not give a usable answer."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    backoff_seconds: float = 0.5

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        base = self.backoff_seconds * float(2 ** (attempt - 1))
        jitter: float = random.uniform(0, base)  # not for security
        return base + jitter


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _detail(response: httpx.Response) -> str:
    """A short reason from an error body, OpenAI-style `{"error": {"message": ...}}` or text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:MAX_ERROR_DETAIL_CHARS]
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])[:MAX_ERROR_DETAIL_CHARS]
        if isinstance(err, str):
            return err[:MAX_ERROR_DETAIL_CHARS]
    return ""


async def post_json(
    *,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    timeout_seconds: float,
    retry: RetryPolicy,
    service: str,
) -> dict[str, Any]:
    """POST `payload`, return the JSON object answered, or raise UpstreamFailure."""
    timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0))
    async with httpx.AsyncClient(timeout=timeout) as client:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await client.post(url, json=payload, headers=headers)
            except httpx.TimeoutException as exc:
                raise UpstreamFailure(
                    f"{service} did not answer within {timeout_seconds:g} seconds",
                    timed_out=True,
                ) from exc
            except httpx.TransportError as exc:
                failure = UpstreamFailure(f"{service} could not be reached ({type(exc).__name__})")
                if attempt >= retry.max_retries:
                    raise failure from exc
            else:
                if response.is_success:
                    try:
                        body = response.json()
                    except ValueError as exc:
                        raise UpstreamFailure(f"{service} answered with invalid JSON") from exc
                    if not isinstance(body, dict):
                        raise UpstreamFailure(f"{service} answered with an unexpected shape")
                    return body
                retriable = response.status_code == 429 or response.status_code >= 500
                detail = _detail(response)
                message = f"{service} answered HTTP {response.status_code}" + (
                    f": {detail}" if detail else ""
                )
                if not retriable or attempt >= retry.max_retries:
                    raise UpstreamFailure(message)
            attempt += 1
            wait = retry.delay(attempt, response)
            logger.warning(
                "%s: retry %d of %d in %.2fs (%s)",
                service,
                attempt,
                retry.max_retries,
                wait,
                response.status_code if response is not None else "connection failed",
            )
            await asyncio.sleep(wait)
