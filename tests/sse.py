"""Reading server-sent events in tests, from an httpx streaming response."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class SseEvent:
    name: str
    data: Any
    id: str | None


async def parse_events(
    response: httpx.Response, *, pings: list[str] | None = None
) -> AsyncIterator[SseEvent]:
    """Events as they arrive; comment lines (heartbeats) go to `pings` when given."""
    name, data, event_id = "message", [], None
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SseEvent(name, json.loads("\n".join(data)), event_id)
            name, data, event_id = "message", [], None
        elif line.startswith(":"):
            if pings is not None:
                pings.append(line)
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line.startswith("id:"):
            event_id = line[3:].strip()


async def collect(response: httpx.Response, *, until: str = "done|error") -> list[SseEvent]:
    stops = set(until.split("|"))
    out = []
    async for event in parse_events(response):
        out.append(event)
        if event.name in stops:
            break
    return out


class Listener:
    """An open /api/events stream, read in the background."""

    def __init__(self) -> None:
        self.events: list[SseEvent] = []
        self.ready = asyncio.Event()
        self.changed = asyncio.Event()

    # Generous: a condition, not a speed; a busy machine may take seconds.
    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> SseEvent:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for event in self.events:
                if predicate(event):
                    return event
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no such event; got {[e.name for e in self.events]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.name == name]


@contextlib.asynccontextmanager
async def listening(
    client: httpx.AsyncClient, headers: dict[str, str], **extra: str
) -> AsyncIterator[Listener]:
    listener = Listener()

    async def read() -> None:
        async with client.stream("GET", "/api/events", headers={**headers, **extra}) as r:
            assert r.status_code == 200
            async for event in parse_events(r):
                listener.events.append(event)
                if event.name == "ready":
                    listener.ready.set()
                listener.changed.set()

    task = asyncio.create_task(read())
    try:
        await asyncio.wait_for(listener.ready.wait(), 30)
        yield listener
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
