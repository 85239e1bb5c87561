"""Helpers for streamed turns (the `live` server fixture is in tests/conftest.py)."""

from __future__ import annotations

from typing import Any


def sse_headers(headers: dict[str, str], **extra: Any) -> dict[str, str]:
    return {**headers, "accept": "text/event-stream", **extra}


def chat_body(text: str, session_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if session_id:
        body["sessionId"] = session_id
    return body
