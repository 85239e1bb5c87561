"""Live events between processes: every instance hears every event, and hands each one to
the streams of its own that want it.

Writers stage events on the transaction that makes them true (`stage`); they go out when
it commits through `app.core.db.commit(session, bus)`, the one way to commit. With
PostgreSQL the NOTIFY is part of that transaction, so an event is sent exactly when its
rows become visible, and never for a rolled-back change. With Redis they are published
right after the commit.

Payloads carry ids only (NOTIFY's limit is 8 kB): `{"u": user, "k": kind, "d": {...}}`.
Kinds a user sees on `/api/events`: `message`, `turn`, `session`, `job`. Kinds only processes
use: `turn_progress` (a turn's partial reply was saved) and `turn_cancel` (stop it).

Each process holds one dedicated connection for listening (PostgreSQL: a direct one, never
through a transaction-mode pooler), not one per client. When it drops, the process
reconnects and tells its streams to `resync`: they may have missed something.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.metrics import EVENT_STREAMS, EVENTS_RECEIVED

logger = logging.getLogger("app.events")

CHANNEL = "chatkeep_events"
STAGED_KEY = "chatkeep.staged_events"
USER_KINDS = frozenset({"message", "turn", "session", "job"})
STREAM_QUEUE_SIZE = 512
RECONNECT_MAX_SECONDS = 10.0
LISTENER_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class Event:
    user_id: str
    kind: str
    data: dict[str, Any]

    def encode(self) -> str:
        return json.dumps(
            {"u": self.user_id, "k": self.kind, "d": self.data}, separators=(",", ":")
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> Event | None:
        try:
            body = json.loads(raw)
            return cls(user_id=str(body["u"]), kind=str(body["k"]), data=dict(body["d"]))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a malformed event payload")
            return None


def user_event(user_id: uuid.UUID | str, kind: str, **data: Any) -> Event:
    return Event(user_id=str(user_id), kind=kind, data=data)


@dataclass(eq=False)  # kept in sets: identity, not value
class UserStream:
    """One open `/api/events` connection: a bounded queue of (id, event)."""

    user_id: str
    # The sign-in (or API key) it was opened with: when that ends (sign-out, password
    # change, expiry, a revoke), the stream ends too (app/events/tasks.py checks the open ones).
    sign_in_id: str | None = None
    queue: asyncio.Queue[tuple[str, Event]] = field(
        default_factory=lambda: asyncio.Queue(STREAM_QUEUE_SIZE)
    )
    # Set when something may have been missed (queue overflow, listener reconnect).
    resync: asyncio.Event = field(default_factory=asyncio.Event)
    signed_out: bool = False

    def offer(self, event_id: str, event: Event) -> None:
        try:
            self.queue.put_nowait((event_id, event))
        except asyncio.QueueFull:
            self.resync.set()


@dataclass(eq=False)
class UserSequence:
    """The numbering of one user's events in this process.

    An event id is `<epoch>-<n>`: the epoch is random, drawn when this process starts
    numbering the user's events, and `n` counts that user's events only. So an id tells its
    user nothing about anybody else: not how much others did between two connects, not
    which users share a process, not when it started.
    """

    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    count: int = 0
    # How many of the user's events are in the hub's replay memory.
    remembered: int = 0

    def event_id(self, n: int) -> str:
        return f"{self.epoch}-{n}"


class Hub:
    """This process's subscribers, and a short memory of recent events for replay."""

    def __init__(self, *, replay_size: int) -> None:
        # (the user's event number, event), oldest first.
        self.recent: deque[tuple[int, Event]] = deque(maxlen=max(1, replay_size))
        # Kept while the user has an open stream or events in `recent`; dropped after, so a
        # later Last-Event-ID of theirs gets a resync (its epoch is gone).
        self.sequences: dict[str, UserSequence] = {}
        self.streams: dict[str, set[UserStream]] = {}
        self.turn_watchers: dict[str, set[asyncio.Event]] = {}
        self.on_cancel: Callable[[str], None] | None = None
        # The server is stopping: open streams end, so it can (clients reconnect elsewhere).
        self.draining = False

    def dispatch(self, event: Event) -> None:
        EVENTS_RECEIVED.inc()
        if event.kind in ("turn", "turn_progress"):
            for waker in self.turn_watchers.get(str(event.data.get("turnId")), ()):
                waker.set()
        if event.kind == "turn_cancel" and self.on_cancel is not None:
            self.on_cancel(str(event.data.get("turnId")))
        if event.kind not in USER_KINDS:
            return
        sequence = self.sequence(event.user_id)
        sequence.count += 1
        sequence.remembered += 1
        if len(self.recent) == self.recent.maxlen:
            _, forgotten = self.recent[0]
            self._forget_one(forgotten.user_id)
        self.recent.append((sequence.count, event))
        event_id = sequence.event_id(sequence.count)
        for stream in self.streams.get(event.user_id, ()):
            stream.offer(event_id, event)

    def sequence(self, user_id: str) -> UserSequence:
        found = self.sequences.get(user_id)
        if found is None:
            found = self.sequences[user_id] = UserSequence()
        return found

    def _forget_one(self, user_id: str) -> None:
        sequence = self.sequences.get(user_id)
        if sequence is None:
            return
        sequence.remembered -= 1
        self._drop_if_unused(user_id)

    def _drop_if_unused(self, user_id: str) -> None:
        sequence = self.sequences.get(user_id)
        if sequence is not None and sequence.remembered <= 0 and user_id not in self.streams:
            del self.sequences[user_id]

    def position(self, user_id: str) -> tuple[str, int]:
        """The id of the user's latest event (what `ready` carries) and its number."""
        sequence = self.sequence(user_id)
        return sequence.event_id(sequence.count), sequence.count

    def resync_all(self) -> None:
        for streams in self.streams.values():
            for stream in streams:
                stream.resync.set()
        for watchers in self.turn_watchers.values():
            for waker in watchers:
                waker.set()

    def drain(self) -> None:
        """End every open stream of this process (they notice at their next wake-up)."""
        self.draining = True
        self.resync_all()

    def replay(self, user_id: str, last_event_id: str) -> list[tuple[str, Event]] | None:
        """Events for `user_id` after `last_event_id`, or None when they can't be known."""
        epoch, _, number = last_event_id.partition("-")
        sequence = self.sequences.get(user_id)
        if sequence is None or epoch != sequence.epoch or not number.isdigit():
            return None  # another process's, one we no longer number, or not ours at all
        after = int(number)
        if after > sequence.count:
            return None
        missed = [
            (sequence.event_id(n), event)
            for n, event in self.recent
            if event.user_id == user_id and n > after
        ]
        if len(missed) != sequence.count - after:
            return None  # some are older than what we remember
        return missed

    def open_sign_ins(self) -> set[str]:
        """The sign-ins that open streams of this process were opened with."""
        return {
            stream.sign_in_id
            for group in self.streams.values()
            for stream in group
            if stream.sign_in_id is not None and not stream.signed_out
        }

    def sign_out(self, sign_in_ids: set[str]) -> int:
        """End the open streams of these sign-ins (they notice at once); how many."""
        ended = 0
        for group in self.streams.values():
            for stream in group:
                if stream.sign_in_id in sign_in_ids and not stream.signed_out:
                    stream.signed_out = True
                    stream.resync.set()
                    ended += 1
        return ended

    @contextlib.contextmanager
    def open_stream(self, user_id: str, sign_in_id: str | None = None) -> Any:
        stream = UserStream(user_id, sign_in_id)
        self.streams.setdefault(user_id, set()).add(stream)
        EVENT_STREAMS.inc()
        try:
            yield stream
        finally:
            EVENT_STREAMS.dec()
            group = self.streams.get(user_id)
            if group is not None:
                group.discard(stream)
                if not group:
                    del self.streams[user_id]
            self._drop_if_unused(user_id)

    @contextlib.contextmanager
    def watch_turn(self, turn_id: str) -> Any:
        waker = asyncio.Event()
        self.turn_watchers.setdefault(turn_id, set()).add(waker)
        try:
            yield waker
        finally:
            group = self.turn_watchers.get(turn_id)
            if group is not None:
                group.discard(waker)
                if not group:
                    del self.turn_watchers[turn_id]


class EventBus:
    """Stages events on transactions and fans them out; see the module docstring."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    # -- writing -----------------------------------------------------------------------

    @staticmethod
    def stage(db: AsyncSession, *events: Event) -> None:
        db.info.setdefault(STAGED_KEY, []).extend(events)

    def take_notifies(self, db: AsyncSession) -> list[str]:
        """The staged events as NOTIFY payloads, for the caller to send with its own last
        statement (one round trip fewer); none when this bus does not publish by NOTIFY."""
        return []

    async def before_commit(self, db: AsyncSession) -> None:
        """Called just before `db` commits."""

    async def after_commit(self, db: AsyncSession) -> None:
        """Called just after `db` committed."""
        db.info.pop(STAGED_KEY, None)

    def discard(self, db: AsyncSession) -> None:
        db.info.pop(STAGED_KEY, None)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PostgresEventBus(EventBus):
    """NOTIFY inside the writer's transaction; one LISTEN connection per process."""

    def __init__(self, hub: Hub, *, dsn: str, connect_timeout: float = 5.0) -> None:
        super().__init__(hub)
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def take_notifies(self, db: AsyncSession) -> list[str]:
        return [e.encode() for e in db.info.pop(STAGED_KEY, [])]

    async def before_commit(self, db: AsyncSession) -> None:
        staged: list[Event] = db.info.pop(STAGED_KEY, [])
        if staged:
            await db.execute(
                sa.text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) p"),
                {"channel": CHANNEL, "payloads": [e.encode() for e in staged]},
            )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="events-listener")
        # Start-up waits briefly for the listener, so the first stream misses nothing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=self.connect_timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        event = Event.decode(payload)
        if event is not None:
            self.hub.dispatch(event)

    async def _listen_forever(self) -> None:
        import asyncpg

        delay = 0.2
        first = True
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(
                    self.dsn, timeout=self.connect_timeout, server_settings=_LISTEN_SETTINGS
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                if not first:
                    logger.info("events listener reconnected")
                    self.hub.resync_all()
                first, delay = False, 0.2
                while True:  # a dead connection shows up here, not in the callback
                    await asyncio.sleep(LISTENER_CHECK_SECONDS)
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), LISTENER_CHECK_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: log, back off, reconnect
                self.connected.clear()
                logger.warning("events listener lost (%s); retrying in %.1fs", exc, delay)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)


_LISTEN_SETTINGS = {"application_name": "chatkeep-events"}


class RedisEventBus(EventBus):
    """PUBLISH after the commit; one SUBSCRIBE connection per process."""

    def __init__(self, hub: Hub, *, url: str) -> None:
        super().__init__(hub)
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def after_commit(self, db: AsyncSession) -> None:
        staged: list[Event] = db.info.pop(STAGED_KEY, [])
        await self.publish(staged)

    async def publish(self, events: Iterable[Event]) -> None:
        events = list(events)
        if not events:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(CHANNEL, event.encode())
                await pipe.execute()
        except Exception as exc:  # the change is committed; a lost event is a resync
            logger.warning("could not publish %d events to Redis: %s", len(events), exc)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="events-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    async def _listen_forever(self) -> None:
        delay = 0.2
        first = True
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.connected.set()
                if not first:
                    logger.info("events listener reconnected")
                    self.hub.resync_all()
                first, delay = False, 0.2
                while True:
                    message = await pubsub.get_message(timeout=LISTENER_CHECK_SECONDS)
                    if message is None:
                        await pubsub.ping()
                        continue
                    event = Event.decode(message["data"])
                    if event is not None:
                        self.hub.dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                logger.warning("events listener lost (%s); retrying in %.1fs", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)


def build_event_bus(*, backend: str, direct_dsn: str, redis_url: str, replay_size: int) -> EventBus:
    hub = Hub(replay_size=replay_size)
    if backend == "redis":
        return RedisEventBus(hub, url=redis_url)
    return PostgresEventBus(hub, dsn=direct_dsn)


class BusFromAnotherLoop(EventBus):
    """`bus`, for transactions committed on another event loop (a job in a thread of its
    own, `app.core.threads`): what runs on the transaction's connection (NOTIFY) runs
    there; what talks to the process's own connections (a Redis PUBLISH) is handed to
    `home`, the loop that owns them, and waited for."""

    def __init__(self, bus: EventBus, home: asyncio.AbstractEventLoop) -> None:
        super().__init__(bus.hub)
        self.bus = bus
        self.home = home

    def take_notifies(self, db: AsyncSession) -> list[str]:
        return self.bus.take_notifies(db)

    async def before_commit(self, db: AsyncSession) -> None:
        await self.bus.before_commit(db)

    async def after_commit(self, db: AsyncSession) -> None:
        sent = asyncio.run_coroutine_threadsafe(self.bus.after_commit(db), self.home)
        await asyncio.wrap_future(sent)

    def discard(self, db: AsyncSession) -> None:
        self.bus.discard(db)
