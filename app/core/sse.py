"""Server-sent events: the wire format, and the response that carries them.

A stream never holds more than a little per client: frames are small (a turn's deltas are
cut at `MAX_DELTA_CHARS`), the server writes one frame at a time and waits while the
connection's buffer is full, and a client that takes nothing for SSE_SEND_TIMEOUT_SECONDS
is dropped with an `error` event (code `slow_reader`, no id) rather than waited on forever.
It resumes with Last-Event-ID, from where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Send

from app.core.errors import problem_body
from app.core.metrics import SSE_SLOW_READERS

logger = logging.getLogger("app.sse")

MEDIA_TYPE = "text/event-stream"
PING = b": ping\n\n"
# Proxies must neither cache nor buffer a stream (nginx honours X-Accel-Buffering).
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
# The most text one `delta` frame carries: a long reply goes out in frames of this size.
MAX_DELTA_CHARS = 16_384
# How long the `slow_reader` event itself may wait for the client to read again.
SLOW_READER_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class Frame:
    """One event, or a heartbeat when `event` is None."""

    event: str | None = None
    data: Any = None
    id: str | int | None = None

    def encode(self) -> bytes:
        if self.event is None:
            return PING
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.event}\ndata: {body}\n\n".encode()


HEARTBEAT = Frame()


def wants_event_stream(accept: str | None) -> bool:
    return bool(accept) and MEDIA_TYPE in (accept or "").lower()


def slow_reader_problem(seconds: float) -> dict[str, Any]:
    return problem_body(
        408,
        detail=(
            f"This stream was closed: the connection took nothing for {seconds:g} seconds. "
            "Reconnect with Last-Event-ID to resume where it stopped."
        ),
        code="slow_reader",
        title="Client too slow to read",
    )


class EventStreamResponse(StreamingResponse):
    """Sends frames one by one; drops a client whose connection stops taking them."""

    def __init__(self, frames: AsyncIterator[Frame], *, send_timeout: float) -> None:
        super().__init__((), media_type=MEDIA_TYPE, headers=HEADERS)  # sent by stream_response
        self.frames = frames
        self.send_timeout = send_timeout

    async def _send(self, send: Send, body: bytes, *, more: bool, seconds: float) -> bool:
        """False when the connection took nothing for `seconds` (nothing was sent then:
        the server waits for room in its buffer before it writes)."""
        message = {"type": "http.response.body", "body": body, "more_body": more}
        try:
            await asyncio.wait_for(send(message), seconds)
        except TimeoutError:
            return False
        return True

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for frame in self.frames:
                if not await self._send(send, frame.encode(), more=True, seconds=self.send_timeout):
                    SSE_SLOW_READERS.inc()
                    logger.info("dropped an event stream whose client read nothing")
                    # If the client reads again soon, it learns why the stream ends; if
                    # not, the server closes the connection with the response unfinished.
                    slow = Frame("error", slow_reader_problem(self.send_timeout))
                    grace = SLOW_READER_GRACE_SECONDS
                    if await self._send(send, slow.encode(), more=True, seconds=grace):
                        await self._send(send, b"", more=False, seconds=grace)
                    return
        finally:
            aclose = getattr(self.frames, "aclose", None)
            if aclose is not None:
                await aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def event_stream(frames: AsyncIterator[Frame], *, send_timeout: float) -> StreamingResponse:
    return EventStreamResponse(frames, send_timeout=send_timeout)
