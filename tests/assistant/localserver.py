"""A real HTTP server on 127.0.0.1 for tests of outgoing calls (LLM, images, webhooks).

`LocalServer(app)` runs an ASGI app under uvicorn in a thread, on a free port.
`Script` is a programmable endpoint: each request takes the next planned answer and is
recorded (headers and raw body) for assertions.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.processes import free_port


class LocalServer:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("the local test server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Planned:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Script:
    """Answers each request with the next planned answer (the last one repeats)."""

    def __init__(self, *planned: Planned) -> None:
        self.planned = list(planned)
        self.requests: list[Recorded] = []

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            Recorded(path=request.url.path, headers=dict(request.headers), body=body)
        )
        plan = self.planned[min(len(self.requests), len(self.planned)) - 1]
        if plan.delay_seconds:
            await asyncio.sleep(plan.delay_seconds)
        if isinstance(plan.body, bytes | str):
            return Response(plan.body, status_code=plan.status, headers=plan.headers)
        return JSONResponse(plan.body, status_code=plan.status, headers=plan.headers)


def serve(routes: dict[str, Any]) -> LocalServer:
    """A server with POST handlers (`async (Request) -> Response`) at the given paths."""

    def endpoint(handler: Any) -> Any:
        async def call(request: Request) -> Response:
            response: Response = await handler(request)
            return response

        return call

    return LocalServer(
        Starlette(routes=[Route(p, endpoint(h), methods=["POST"]) for p, h in routes.items()])
    )


def chat_completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def iter_messages(recorded: Recorded) -> Iterator[dict[str, str]]:
    yield from recorded.json()["messages"]
