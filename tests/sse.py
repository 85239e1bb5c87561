"""Reading server-sent events in tests, from an httpx streaming response."""

from __future__ import annotations

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
