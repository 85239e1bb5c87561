"""Background work on an event loop of its own, in a thread of its own.

A long batch job (the sweep of idle sessions) that shares the loop serving requests
delays every request by the time its own Python work holds the loop: building thousands
of rows and events per batch. Run in a thread with its own loop (and its own database
connections, made there: an engine's pool belongs to the loop that made it), it only
shares the interpreter, which switches threads every few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _settle(done: asyncio.Future[T], exc: BaseException | None, result: T | None) -> None:
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)  # type: ignore[arg-type]


async def run_in_own_loop(make: Callable[[], Awaitable[T]], *, name: str) -> T:
    """Runs `make()` to the end on a new event loop in a new thread; the caller's loop
    stays free meanwhile. Cancelling the caller cancels the job in its thread and waits for
    it to finish cleaning up."""
    started = threading.Event()
    box: dict[str, object] = {}
    caller = asyncio.get_running_loop()
    done: asyncio.Future[T] = caller.create_future()

    def report(outcome: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop closed
            caller.call_soon_threadsafe(outcome)

    async def body() -> None:
        box["loop"], box["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        try:
            result = await make()
        except asyncio.CancelledError:
            report(done.cancel)
        except BaseException as exc:  # the caller's to handle
            report(functools.partial(_settle, done, exc, None))
        else:
            report(functools.partial(_settle, done, None, result))

    thread = threading.Thread(target=asyncio.run, args=(body(),), name=name, daemon=True)
    thread.start()
    await asyncio.to_thread(started.wait)
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        loop, task = box["loop"], box["task"]
        with contextlib.suppress(RuntimeError):  # it ended on its own meanwhile
            loop.call_soon_threadsafe(task.cancel)  # type: ignore[attr-defined]
        await asyncio.to_thread(thread.join)
        raise
    finally:
        await asyncio.to_thread(thread.join)


@contextlib.asynccontextmanager
async def running_in_own_loop(
    make: Callable[[], Awaitable[None]], *, name: str
) -> AsyncIterator[None]:
    """Runs `make()` in a thread of its own for as long as the block lasts; it is
    cancelled (and waited for) when the block ends."""
    task = asyncio.create_task(run_in_own_loop(make, name=name), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
