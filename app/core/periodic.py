"""A job every process runs on a timer, for as long as the app runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable


async def _every(
    seconds: float, job: Callable[[], Awaitable[None]], *, what: str, logger: logging.Logger
) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be down; try again next tick
            logger.warning("%s failed, will retry: %s", what, exc)


@contextlib.asynccontextmanager
async def running_every(
    seconds: float, job: Callable[[], Awaitable[None]], *, what: str, logger: logging.Logger
) -> AsyncIterator[None]:
    """Runs `job` every `seconds` until the block ends; a failure is logged, not raised."""
    task = asyncio.create_task(_every(seconds, job, what=what, logger=logger), name=what)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
