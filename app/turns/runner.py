"""Runs the middle step of every turn in this process: the model writes, no connection held.

Each turn generates in a task of its own, detached from the request that opened it: a
client that disconnects never stops a reply, which is stored whole, up to MAX_REPLY_CHARS
(past it the model is no longer read, and the reply is stored cut and marked `truncated`).
While replies are generating, one checkpoint task runs every TURN_CHECKPOINT_SECONDS: a
small heartbeat statement for all of this process's turns first (it keeps them from being
declared stale, and tells which were asked to stop), then their partial replies in a
transaction of their own with a time limit (so other instances can follow them; a slow
or failed write of them never holds back the heartbeat).

Followers in this process read a turn's text from memory (`LiveTurn`) as it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.assistant.base import AssistantError, Usage
from app.core.clock import Clock
from app.core.errors import problem_body
from app.core.metrics import CHAT_TURNS, TURNS_IN_FLIGHT
from app.events.bus import EventBus
from app.turns.checkpoints import CheckpointItem, checkpoint
from app.turns.closing import close_turn, fail_turn
from app.turns.opening import OpenedTurn
from app.turns.problems import (
    SessionGoneError,
    TurnLostError,
    deleted_problem,
    interrupted_problem,
)

logger = logging.getLogger("app.turns")

CLOSE_ATTEMPTS = 4
CLOSE_BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class ClosedReply:
    """A turn whose reply was stored (its transaction committed), for the work that
    follows a turn without being part of it."""

    opened: OpenedTurn
    text: str
    status: str  # done | stopped
    # The stored reply's seq (the head the next turn continues from, unless moved).
    reply_seq: int | None
    sessionmaker: async_sessionmaker[AsyncSession]
    bus: EventBus
    clock: Clock


# Work after a reply is stored, added by the package that owns it (a conversation's title:
# app/titles), so that turns imports none of them. A hook answers at once: the work it
# returns runs in a task of its own, after the turn has closed and its client was told.
TurnClosedHook = Callable[[ClosedReply], Coroutine[Any, Any, None] | None]
TURN_CLOSED_HOOKS: list[TurnClosedHook] = []


def on_turn_closed(hook: TurnClosedHook) -> TurnClosedHook:
    """Adds `hook` to every stored reply (a decorator)."""
    if hook not in TURN_CLOSED_HOOKS:
        TURN_CLOSED_HOOKS.append(hook)
    return hook


class LiveTurn:
    """A turn generating here: its text so far, and a way to wait for more.

    It is the `ReplyOutput` the assistant writes to. It holds at most `max_chars`: the
    write that reaches the cap is cut there, the turn is marked `truncated` and the model
    is no longer read (the generation is cancelled, as a stop would).
    """

    def __init__(self, opened: OpenedTurn, *, max_chars: int) -> None:
        self.opened = opened
        self.max_chars = max_chars
        self.truncated = False
        self.id = opened.turn_id
        self.parts: list[str] = []
        self.length = 0
        self._joined = ""
        self._joined_parts = 0
        self.usage: Usage | None = None
        self.queue_position: int | None = None  # waiting in line for the model
        self.outcome: Any = None
        # ("done", payload) or ("error", problem), set once the turn is closed in the DB.
        self.final: tuple[str, dict[str, Any]] | None = None
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.stop_requested = False
        self.interrupted = False  # shutting down, or failed elsewhere
        self.timed_out = False
        self._shield_depth = 0
        self._stop_deferred = False
        self.saved_length = 0

    # -- ReplyOutput ----------------------------------------------------------------

    def write(self, text: str) -> None:
        if not text or self.final is not None or self.truncated:
            return
        room = self.max_chars - self.length
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        if text:
            self.parts.append(text)
            self.length += len(text)
        if self.truncated:
            self.cancel_generation()
        self.wake()

    @property
    def text(self) -> str:
        if self._joined_parts != len(self.parts):
            self._joined += "".join(self.parts[self._joined_parts :])
            self._joined_parts = len(self.parts)
        return self._joined

    def add_usage(self, usage: Usage) -> None:
        self.usage = usage if self.usage is None else self.usage + usage

    def set_outcome(self, outcome: Any) -> None:
        self.outcome = outcome

    def queued(self, position: int | None) -> None:
        if position != self.queue_position:
            self.queue_position = position
            self.wake()

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._shield_depth += 1
        try:
            yield
        finally:
            self._shield_depth -= 1
            if self._shield_depth == 0 and self._stop_deferred and self.task is not None:
                self._stop_deferred = False
                self.task.cancel()

    # -- control --------------------------------------------------------------------

    def wake(self) -> None:
        woken, self.changed = self.changed, asyncio.Event()
        woken.set()

    def cancel_generation(self) -> None:
        if self.task is None or self.task.done():
            return
        if self._shield_depth:
            self._stop_deferred = True
        else:
            self.task.cancel()

    def finish(self, kind: str, payload: dict[str, Any]) -> None:
        self.final = (kind, payload)
        self.wake()


class TurnRunner:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        clock: Clock,
        max_in_flight: int,
        timeout_seconds: float,
        checkpoint_seconds: float,
        max_reply_chars: int,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.clock = clock
        self.max_in_flight = max_in_flight
        self.timeout_seconds = timeout_seconds
        self.checkpoint_seconds = checkpoint_seconds
        self.max_reply_chars = max_reply_chars
        self.live: dict[uuid.UUID, LiveTurn] = {}
        self.reserved = 0
        self._runs: set[asyncio.Task[None]] = set()
        self._after: set[asyncio.Task[None]] = set()  # what TURN_CLOSED_HOOKS started
        self._checkpointer: asyncio.Task[None] | None = None
        bus.hub.on_cancel = self._on_cancel_event

    # -- admission ------------------------------------------------------------------

    def reserve(self) -> bool:
        """Claim a slot for one more reply, or say the process is full."""
        if self.reserved >= self.max_in_flight:
            return False
        self.reserved += 1
        TURNS_IN_FLIGHT.set(self.reserved)
        return True

    def release(self) -> None:
        self.reserved = max(0, self.reserved - 1)
        TURNS_IN_FLIGHT.set(self.reserved)

    # -- running --------------------------------------------------------------------

    def start(self, opened: OpenedTurn) -> LiveTurn:
        """Generate the reply of a turn that was opened (and a slot reserved for it)."""
        live = LiveTurn(opened, max_chars=self.max_reply_chars)
        self.live[live.id] = live
        live.task = asyncio.create_task(
            opened.assistant.generate(
                turn=opened.input, prepared=opened.prepared, out=live, reader=self.sessionmaker
            ),
            name=f"turn-{live.id}",
        )
        run = asyncio.create_task(self._run(live), name=f"turn-close-{live.id}")
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)
        return live

    def get(self, turn_id: uuid.UUID) -> LiveTurn | None:
        return self.live.get(turn_id)

    def stop(self, turn_id: uuid.UUID) -> bool:
        live = self.live.get(turn_id)
        if live is None or live.final is not None:
            return False
        live.stop_requested = True
        live.cancel_generation()
        return True

    def wake_followers(self) -> None:
        """Every follower of a turn here checks again (the server is stopping)."""
        for live in self.live.values():
            live.wake()

    def _on_cancel_event(self, turn_id: str) -> None:
        with contextlib.suppress(ValueError):
            self.stop(uuid.UUID(turn_id))

    async def _run(self, live: LiveTurn) -> None:
        assert live.task is not None
        opened = live.opened
        problem: dict[str, Any] | None = None
        try:
            done, _ = await asyncio.wait({live.task}, timeout=self.timeout_seconds)
            if not done:
                live.timed_out = True
                live.task.cancel()
                await asyncio.wait({live.task})
            try:
                live.task.result()
            except asyncio.CancelledError:
                if live.timed_out:
                    problem = _timeout_problem(opened.session_id, self.timeout_seconds)
                elif live.interrupted or not (live.stop_requested or live.truncated):
                    problem = interrupted_problem(opened.session_id)
            except AssistantError as exc:
                problem = _assistant_problem(opened.session_id, exc)
            except Exception:
                logger.exception("turn %s failed", live.id)
                problem = problem_body(
                    500,
                    detail="Something went wrong on our side while writing the reply. "
                    "Your message was saved; please retry.",
                    code="internal_error",
                    extra={"sessionId": opened.session_id},
                )
            await self._close(live, problem)
        finally:
            self.live.pop(live.id, None)
            self.release()

    async def _close(self, live: LiveTurn, problem: dict[str, Any] | None) -> None:
        opened = live.opened
        text = live.text
        for attempt in range(1, CLOSE_ATTEMPTS + 1):
            try:
                if problem is None:
                    closed = await close_turn(
                        sessionmaker=self.sessionmaker,
                        bus=self.bus,
                        opened=opened,
                        text=text,
                        outcome=live.outcome,
                        stopped=live.stop_requested,
                        truncated=live.truncated,
                        usage=live.usage,
                        now=self.clock.now(),
                    )
                    outcome = "ok" if closed.status == "done" else closed.status
                    CHAT_TURNS.labels(outcome=outcome).inc()
                    payload: dict[str, Any] = {
                        "reply": text,
                        "imageUrl": closed.image_url,
                        "sessionId": opened.session_id,
                        "seq": closed.reply_seq,
                        "stopped": closed.status == "stopped",
                        "truncated": live.truncated,
                        "usage": live.usage.as_json() if live.usage else None,
                    }
                    if closed.tool_calls:  # a reply of /v1 that called the client's tools
                        payload["toolCalls"] = closed.tool_calls
                    live.finish("done", payload)
                    self._after_close(live, text, closed.status, closed.reply_seq)
                else:
                    await fail_turn(
                        sessionmaker=self.sessionmaker,
                        bus=self.bus,
                        opened=opened,
                        problem=problem,
                        partial=text,
                        usage=live.usage,
                        now=self.clock.now(),
                    )
                    CHAT_TURNS.labels(outcome="assistant_error").inc()
                    live.finish("error", problem)
                return
            except SessionGoneError:
                CHAT_TURNS.labels(outcome="lost").inc()
                live.finish("error", deleted_problem(opened.session_id))
                return
            except TurnLostError:
                CHAT_TURNS.labels(outcome="lost").inc()
                live.finish("error", interrupted_problem(opened.session_id))
                return
            except Exception as exc:
                if attempt == CLOSE_ATTEMPTS:
                    # Left `generating` in the database: without our heartbeat it turns
                    # stale and is failed by the next reader.
                    logger.exception("turn %s could not be saved", live.id)
                    CHAT_TURNS.labels(outcome="lost").inc()
                    live.finish("error", interrupted_problem(opened.session_id))
                    return
                logger.warning("saving turn %s failed (%s); retrying", live.id, exc)
                await asyncio.sleep(CLOSE_BACKOFF_SECONDS * 2 ** (attempt - 1))

    def _after_close(self, live: LiveTurn, text: str, status: str, reply_seq: int | None) -> None:
        closed = ClosedReply(
            opened=live.opened,
            text=text,
            status=status,
            reply_seq=reply_seq,
            sessionmaker=self.sessionmaker,
            bus=self.bus,
            clock=self.clock,
        )
        for hook in TURN_CLOSED_HOOKS:
            try:
                work = hook(closed)
            except Exception:
                logger.exception("after turn %s: %s failed", live.id, hook)
                continue
            if work is not None:
                task = asyncio.create_task(work, name=f"after-turn-{live.id}")
                self._after.add(task)
                task.add_done_callback(self._after.discard)

    # -- checkpoints ----------------------------------------------------------------

    async def start_checkpoints(self) -> None:
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="turn-checkpoints")

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_seconds)
            try:
                await self.checkpoint_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("turn checkpoint failed: %s", exc)

    async def checkpoint_once(self) -> None:
        running = [live for live in self.live.values() if live.final is None]
        if not running:
            return
        items = []
        for live in running:
            changed = live.length != live.saved_length
            items.append(
                CheckpointItem(
                    turn_id=live.id,
                    user_id=live.opened.user_id,
                    session_id=live.opened.session_id,
                    text=live.text if changed else None,
                )
            )
        lengths = {live.id: live.length for live in running}
        result = await checkpoint(
            sessionmaker=self.sessionmaker,
            bus=self.bus,
            items=items,
            now=self.clock.now(),
            partial_timeout_seconds=self.checkpoint_seconds,
        )
        for live in running:
            if live.id in result.saved:
                live.saved_length = lengths[live.id]
            if live.id not in result.alive and live.final is None and live.id in self.live:
                # Failed elsewhere (we were silent too long): this reply has no home.
                live.interrupted = True
                live.cancel_generation()
            if live.id in result.cancel_requested:
                self.stop(live.id)

    # -- shutdown -------------------------------------------------------------------

    async def shutdown(self, grace_seconds: float) -> None:
        """Let replies finish for `grace_seconds`, then fail what is left, and stop."""
        if self._runs:
            _, pending = await asyncio.wait(set(self._runs), timeout=grace_seconds)
            for live in list(self.live.values()):
                live.interrupted = True
                live.cancel_generation()
            if pending:
                await asyncio.wait(pending, timeout=30)
        for task in list(self._after):  # titles and the like: nothing is lost without them
            task.cancel()
        if self._after:
            await asyncio.wait(set(self._after), timeout=5)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer


def _timeout_problem(session_id: str, seconds: float) -> dict[str, Any]:
    return problem_body(
        504,
        detail=(
            f"The assistant did not finish within {seconds:g} seconds. "
            "Your message was saved; please retry."
        ),
        code="upstream_timeout",
        title="Upstream service timed out",
        extra={"sessionId": session_id},
    )


# What the page shows for each way the model's server can fail (AssistantError.failure).
_FAILURES: dict[str, tuple[str, str]] = {
    "connection_refused": (
        "upstream_connection_refused",
        "The language model's server refused the connection (it is not running or not reachable)",
    ),
    "connection_reset": (
        "upstream_connection_reset",
        "The connection to the language model's server was closed before the reply ended",
    ),
    "rejected": ("upstream_rejected", "The language model refused the request"),
}


def _assistant_problem(session_id: str, exc: AssistantError) -> dict[str, Any]:
    named = _FAILURES.get(exc.failure or "")
    if named is not None:
        code, title = named
        return problem_body(
            502,
            detail=f"{exc}. Your message was saved; please retry.",
            code=code,
            title=title,
            extra={"sessionId": session_id},
        )
    if exc.timed_out:
        return problem_body(
            504,
            detail="The assistant did not answer in time. Your message was saved; please retry.",
            code="upstream_timeout",
            title="Upstream service timed out",
            extra={"sessionId": session_id},
        )
    return problem_body(
        502,
        detail=f"The assistant failed: {exc}. Your message was saved; please retry.",
        code="upstream_error",
        title="Upstream service failed",
        extra={"sessionId": session_id},
    )
