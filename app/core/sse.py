"""Server-sent events: the wire format, and the response that carries them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse

MEDIA_TYPE = "text/event-stream"
PING = b": ping\n\n"
# Proxies must neither cache nor buffer a stream (nginx honours X-Accel-Buffering).
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


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


def event_stream(frames: AsyncIterator[Frame]) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        async for frame in frames:
            yield frame.encode()

    return StreamingResponse(body(), media_type=MEDIA_TYPE, headers=HEADERS)
