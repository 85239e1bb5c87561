"""One large import per process at a time; the others wait in a short line.

Parsing a large export is CPU work in a worker thread, and its rows go in through one
transaction: two at once would only share the CPU and the GIL with every other request.
So an import over IMPORT_LARGE_BYTES (and every ZIP, whose size says little about what it
unpacks to) takes the one slot. Up to IMPORT_QUEUE_LENGTH more wait for it, first come
first served, for at most IMPORT_QUEUE_WAIT_SECONDS, holding no database connection. The
line full, or the wait over, the import is refused with `503 import_busy` and a
Retry-After: nothing was read into the database, and the import quota is not used.
Small imports (one conversation's JSON) do not wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import Counter, Gauge

from app.core.errors import ServiceUnavailableError
from app.core.metrics import REGISTRY

RETRY_AFTER_SECONDS = 30
IMPORTS_WAITING = Gauge(
    "chatkeep_imports_waiting",
    "Large imports waiting in line for this process's one large-import slot.",
    registry=REGISTRY,
)
IMPORTS_BUSY = Counter(
    "chatkeep_import_busy_total",
    "Imports answered 503 import_busy (the line full, or the wait over).",
    registry=REGISTRY,
)


def busy(retry_after: int) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "Another large import is running on this server. Nothing was imported; "
        f"please try again in {retry_after} s.",
        code="import_busy",
        headers={"Retry-After": str(retry_after)},
    )


class ImportAdmission:
    """The slot of this process (one per app, made on first use)."""

    def __init__(self) -> None:
        self._slot = asyncio.Lock()
        self.waiting = 0

    @asynccontextmanager
    async def slot(self, *, queue_length: int, wait_seconds: float) -> AsyncIterator[None]:
        """Holds the one large-import slot; waits in line for it or raises `import_busy`."""
        if self._slot.locked():
            if self.waiting >= queue_length:
                IMPORTS_BUSY.inc()
                raise busy(RETRY_AFTER_SECONDS)
            self.waiting += 1
            IMPORTS_WAITING.inc()
            try:
                async with asyncio.timeout(wait_seconds):
                    await self._slot.acquire()
            except TimeoutError:
                IMPORTS_BUSY.inc()
                raise busy(RETRY_AFTER_SECONDS) from None
            finally:
                self.waiting -= 1
                IMPORTS_WAITING.dec()
        else:
            await self._slot.acquire()
        try:
            yield
        finally:
            self._slot.release()


async def get_import_admission(request: Request) -> ImportAdmission:
    state = request.app.state
    admission: ImportAdmission | None = getattr(state, "import_admission", None)
    if admission is None:
        admission = state.import_admission = ImportAdmission()
    return admission


ImportAdmissionDep = Annotated[ImportAdmission, Depends(get_import_admission)]
