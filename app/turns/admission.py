"""How many chat turns open at once in this process, and the queue in front of them.

Opening a turn needs a pooled connection from the sign-in check to the commit of its first
transaction. When hundreds of users send at the same moment, letting every request reach
the pool makes them all compete for the event loop while they hold or wait for a
connection: each holder is slowed by everyone else, the pool drains slowly, and the
requests at the back time out on the pool (`DB_POOL_TIMEOUT_SECONDS`, kept short so a
frozen database fails fast) with `503 server_busy`.

So a turn first takes one of `TURN_OPEN_SLOTS` here, waiting in line (first come, first
served) for up to `TURN_OPEN_WAIT_SECONDS` while holding nothing, and gives the slot back
as soon as its opening transaction commits (the model call holds none). Only the holders
touch the pool, so they always find a connection; the rest of the pool stays free for
closing turns and for every other route.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from app.core.errors import ServiceUnavailableError
from app.core.metrics import TURN_OPEN_QUEUE_TIMEOUTS, TURN_OPEN_WAITING

# Retry-After for a request that waited its whole turn in line.
QUEUE_RETRY_AFTER_SECONDS = 2


class OpenSlot:
    """One request's place among the turns opening now; released once, early or at the end."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


class TurnAdmission:
    def __init__(self, *, slots: int, wait_seconds: float) -> None:
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._semaphore = asyncio.Semaphore(slots)
        self.waiting = 0

    async def acquire(self) -> OpenSlot:
        self.waiting += 1
        TURN_OPEN_WAITING.set(self.waiting)
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self.wait_seconds)
        except TimeoutError:
            TURN_OPEN_QUEUE_TIMEOUTS.inc()
            raise ServiceUnavailableError(
                "The server is starting more messages than it can right now. "
                "Nothing was saved; please send again in a moment.",
                code="server_busy",
                headers={"Retry-After": str(QUEUE_RETRY_AFTER_SECONDS)},
            ) from None
        finally:
            self.waiting -= 1
            TURN_OPEN_WAITING.set(self.waiting)
        return OpenSlot(self._semaphore)


async def open_slot(request: Request) -> AsyncIterator[OpenSlot]:
    """A place among the turns opening now; the route releases it after the first commit."""
    admission: TurnAdmission = request.app.state.turn_admission
    slot = await admission.acquire()
    try:
        yield slot
    finally:
        slot.release()


OpenSlotDep = Annotated[OpenSlot, Depends(open_slot)]
