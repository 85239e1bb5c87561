"""Errors of `/v1` in OpenAI's shape, so that its SDKs raise their usual exceptions.

Every error of the app is a problem+json body, whoever raised it (the sign-in check, a rate
limit, validation, a failed turn, the body-size limit). Under `/v1/` this middleware turns
such an answer into `{"error": {"message", "type", "code", "param"}}`, with the same status
(422 becomes 400, as OpenAI answers a request it cannot read) and the same headers
(`Retry-After` included).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import PROBLEM_MEDIA_TYPE

PREFIX = "/v1/"

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(problem: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's error object for a problem+json body."""
    status = int(problem.get("status") or 500)
    code = str(problem.get("code") or "error")
    if status == 401:
        code = "invalid_api_key"
    return {
        "error": {
            "message": str(problem.get("detail") or problem.get("title") or "Error"),
            "type": error_type(status),
            "code": code,
            "param": None,
        }
    }


class OpenAIErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                media = headers.get(b"content-type", b"").decode("latin-1")
                if media.startswith(PROBLEM_MEDIA_TYPE):
                    start = message  # held until the whole body is here
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            try:
                problem = json.loads(b"".join(chunks))
            except ValueError:
                problem = {"status": start["status"], "detail": "Error"}
            status = 400 if start["status"] == 422 else start["status"]
            body = json.dumps(error_body({**problem, "status": status})).encode()
            kept = [
                (k, v)
                for k, v in start.get("headers") or []
                if k.lower() not in (b"content-type", b"content-length")
            ]
            kept += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": kept})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, rewriting_send)
