"""A fake OpenAI-compatible model server: `/v1/chat/completions`, streamed or not.

In tests: `FakeModel` holds a queue of planned replies (text, a tool call, an HTTP error,
delays) and records every request; `serve_model(model)` runs it on 127.0.0.1 in a thread.
As a process (the benchmark, trying the app by hand):

    python -m tests.fakemodel --port 9100 --seconds 3 --words 30

answers every request with `--words` words spread over `--seconds`, streamed word by word,
and reports at `GET /stats` when it sent each reply's first token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.assistant.openai_compat import SUMMARY_PROMPT, TITLE_PROMPT
from tests.assistant.localserver import LocalServer


@dataclass
class Planned:
    """One reply. `text` is streamed in `chunks` (words by default); a `tool` call
    (name, arguments) is sent instead of or after the text."""

    text: str = ""
    tool: tuple[str, dict[str, Any]] | None = None
    status: int = 200
    error: str = "planned failure"
    headers: dict[str, str] = field(default_factory=dict)
    first_token_seconds: float = 0.0
    chunk_seconds: float = 0.0
    chunks: list[str] | None = None
    usage: tuple[int, int] | None = (11, 7)
    hang: bool = False  # never answer (for timeouts)
    cut_after: int | None = None  # drop the connection after this many chunks

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return self.chunks
        words = self.text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words) if w or i]


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def last_user(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")


class FakeModel:
    """Answers replies from the plan; a request for a conversation's title (the app's
    title prompt) gets `title` instead, and is kept apart in `title_requests`, so a plan
    and `requests` hold the replies only."""

    def __init__(
        self, *planned: Planned, default: Planned | None = None, title: Planned | None = None
    ) -> None:
        self.planned = list(planned)
        self.default = default or Planned(text="A fake answer.")
        self.title = title or Planned(text="A fake title")
        self.title_requests: list[Recorded] = []
        # Summaries of long conversations: answered from `summaries` (then "A fake summary
        # N"), kept apart in `summary_requests` like titles.
        self.summaries: list[str] = []
        self.summary_requests: list[Recorded] = []
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.first_token_at: dict[str, float] = {}
        self.chunks_sent = 0  # text chunks handed to a connection, over all replies

    def plan(self, *planned: Planned) -> None:
        self.planned.extend(planned)

    def _next(self) -> Planned:
        return self.planned.pop(0) if self.planned else self.default

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        recorded = Recorded(body=body, headers=dict(request.headers))
        if _is_title(recorded):
            self.title_requests.append(recorded)
            return StreamingResponse(self._title_stream(), media_type="text/event-stream")
        if _is_summary(recorded):
            self.summary_requests.append(recorded)
            n = len(self.summary_requests)
            text = self.summaries.pop(0) if self.summaries else f"A fake summary {n}"
            return StreamingResponse(self._text_stream(text), media_type="text/event-stream")
        self.requests.append(recorded)
        plan = self._next()
        if plan.hang:
            await asyncio.sleep(3600)
        if plan.status != 200:
            return JSONResponse(
                {"error": {"message": plan.error, "type": "test"}},
                status_code=plan.status,
                headers=plan.headers,
            )
        key = _key(recorded)
        if not body.get("stream"):
            await asyncio.sleep(plan.first_token_seconds)
            return JSONResponse(_completion(plan))
        return StreamingResponse(
            self._stream(plan, key), media_type="text/event-stream", headers=plan.headers
        )

    async def _stream(self, plan: Planned, key: str) -> AsyncIterator[bytes]:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(plan.first_token_seconds)
            first = True
            for sent, piece in enumerate(plan.pieces()):
                if plan.cut_after is not None and sent >= plan.cut_after:
                    raise ConnectionResetError("the fake model drops the connection")
                if first:
                    self.first_token_at.setdefault(key, time.time())
                    first = False
                else:
                    await asyncio.sleep(plan.chunk_seconds)
                yield _chunk({"content": piece})
                self.chunks_sent += 1
            if plan.tool is not None:
                name, arguments = plan.tool
                yield _chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(arguments)},
                            }
                        ]
                    },
                    finish="tool_calls",
                )
            if plan.usage is not None:
                prompt, completion = plan.usage
                usage = {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                }
                yield _sse({**_envelope(), "choices": [], "usage": usage})
            yield b"data: [DONE]\n\n"
        finally:
            self.in_flight -= 1

    async def _title_stream(self) -> AsyncIterator[bytes]:
        """The title, streamed in one piece (counted in no statistic)."""
        async for part in self._text_stream(self.title.text):
            yield part

    async def _text_stream(self, text: str) -> AsyncIterator[bytes]:
        yield _chunk({"content": text})
        yield b"data: [DONE]\n\n"

    async def stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "requests": len(self.requests),
                "peakInFlight": self.peak_in_flight,
                "firstTokenAt": self.first_token_at,
            }
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                Route("/stats", self.stats, methods=["GET"]),
            ]
        )


def _is_title(recorded: Recorded) -> bool:
    messages = recorded.messages
    return bool(messages) and messages[0].get("content") == TITLE_PROMPT


def _is_summary(recorded: Recorded) -> bool:
    messages = recorded.messages
    return bool(messages) and messages[0].get("content") == SUMMARY_PROMPT


def _key(recorded: Recorded) -> str:
    try:
        return recorded.last_user
    except StopIteration:
        return ""


def _envelope() -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "fake",
    }


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return _sse({**_envelope(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _completion(plan: Planned) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": plan.text},
                "finish_reason": "stop",
            }
        ],
    }


def serve_model(model: FakeModel) -> LocalServer:
    return LocalServer(model.app())


class ClosingKeptConnections:
    """A TCP front for a model server that closes a kept-alive connection the moment the
    next request arrives on it, without answering: a server whose keep-alive timer fired
    just as the client reused the connection. Every connection serves one request.

        async with ClosingKeptConnections(server.port) as front:
            ... f"http://127.0.0.1:{front.port}/v1" ...
            front.closed  # kept connections closed so far
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.closed = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ClosingKeptConnections:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        answered = asyncio.Event()

        async def to_client() -> None:
            while chunk := await up_r.read(65536):
                answered.set()
                client_w.write(chunk)
                await client_w.drain()

        back = asyncio.create_task(to_client())
        try:
            while chunk := await client_r.read(65536):
                if answered.is_set():
                    # A second request on this connection: close it unanswered.
                    self.closed += 1
                    break
                up_w.write(chunk)
                await up_w.drain()
        finally:
            back.cancel()
            for writer in (client_w, up_w):
                writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--seconds", type=float, default=3.0, help="time for a whole reply")
    parser.add_argument("--words", type=int, default=30)
    args = parser.parse_args()
    words = [f"word{i}" for i in range(args.words)]
    step = args.seconds / max(1, args.words)
    model = FakeModel(
        default=Planned(text=" ".join(words), first_token_seconds=step, chunk_seconds=step)
    )
    import uvicorn

    uvicorn.run(model.app(), host=args.host, port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
