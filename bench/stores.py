"""The session stores under comparison, each behind the same chat turn.

Designs 1-3 are the original design's current implementation and its two production
options. They share `blob_turn`, the original route's turn: load the session's whole
message list, give the assistant the same bounded context Chatkeep gives it, append the
user's message and the reply, write the list back. Only `open_conversation` differs.

Design 4 is Chatkeep as built: `app.conversations.service.chat_turn` in a real
AsyncSession, committed the way the request's session dependency commits it.

Design 5 is the floor: the database work one durable append-only turn cannot do without,
sent straight through asyncpg.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.assistant.base import Assistant, HistoryMessage, TurnInput
from app.conversations.ids import new_session_id
from app.conversations.service import ContextLimits
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker
from app.events.bus import EventBus, Hub
from app.turns.closing import close_turn
from app.turns.opening import OpenedTurn, TurnRequest, open_turn
from app.turns.runner import LiveTurn
from bench.data import SeedMessage
from bench.pg import plain_dsn
from tests.assistant.echo import EchoAssistant
from tests.assistants import CollectingOutput

SESSION_TTL_SECONDS = 1800  # the original design's 30 minutes, and Chatkeep's default
LIMITS = ContextLimits(max_messages=50, max_chars=24_000)  # Chatkeep's defaults
MAX_REPLY_CHARS = Settings.model_fields["max_reply_chars"].default
REPLY = (
    "Here is a first draft you can post as it is or ask me to change: a short paragraph with "
    "the offer, the dates and one line that invites people to reply. Shall I post it?"
)


@dataclass(frozen=True)
class SeedSession:
    """A conversation to load before timing: `messages` already exchanged."""

    session_id: str
    user_id: uuid.UUID
    messages: Sequence[SeedMessage]
    last_activity_at: datetime


class Store(Protocol):
    name: str
    durable: bool

    async def seed(self, sessions: Sequence[SeedSession]) -> None: ...

    async def turn(self, *, user_id: uuid.UUID, session_id: str | None, message: str) -> str:
        """One chat turn; returns the session id the reply belongs to."""
        ...

    async def close(self) -> None: ...


def _message_json(role: str, content: str, at: datetime) -> dict[str, Any]:
    return {"role": role, "content": content, "createdAt": at.isoformat()}


def context_of(messages: Sequence[dict[str, Any]], limits: ContextLimits) -> list[HistoryMessage]:
    """The same context Chatkeep's `load_context` picks: the newest messages within budget."""
    picked: list[HistoryMessage] = []
    budget = limits.max_chars
    oldest = max(0, len(messages) - limits.max_messages)
    for index in range(len(messages) - 1, oldest - 1, -1):
        content = messages[index]["content"]
        if picked and len(content) > budget:
            break
        budget -= len(content)
        picked.append(HistoryMessage(seq=index + 1, role=messages[index]["role"], content=content))
    picked.reverse()
    return picked


@dataclass
class Conversation:
    session_id: str
    messages: list[dict[str, Any]]
    user_id: uuid.UUID
    is_new: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class BlobStore(Protocol):
    name: str
    durable: bool

    def open_conversation(
        self, *, user_id: uuid.UUID, session_id: str | None, now: datetime
    ) -> contextlib.AbstractAsyncContextManager[Conversation]:
        """Load the whole message list; whatever is in it on exit is written back."""
        ...


async def blob_turn(
    store: BlobStore,
    *,
    user_id: uuid.UUID,
    session_id: str | None,
    message: str,
    assistant: Assistant,
    now: datetime | None = None,
) -> str:
    """The original route's turn, for every store that keeps a session as one value."""
    now = now or datetime.now(UTC)
    async with store.open_conversation(user_id=user_id, session_id=session_id, now=now) as convo:
        history = context_of(convo.messages, LIMITS)
        turn = TurnInput(
            user_id=user_id,
            session_id=convo.session_id,
            message_seq=len(convo.messages) + 1,
            history=history,
            message=message,
            context=None,
            now=now,
        )
        out = CollectingOutput()
        await assistant.generate(
            turn=turn, prepared=None, out=out, reader=cast(Any, None)
        )  # these designs have no database session
        convo.messages.append(_message_json("user", message, now))
        convo.messages.append(_message_json("assistant", out.text, now))
    return convo.session_id


# --------------------------------------------------------------------------- 1. in-memory


class MemoryStore:
    """The original design as it runs today: a dict in the server process."""

    name = "in-memory dict"
    durable = False

    def __init__(self) -> None:
        self.sessions: dict[str, list[dict[str, Any]]] = {}
        self.last_activity: dict[str, datetime] = {}
        self.assistant = EchoAssistant()

    @contextlib.asynccontextmanager
    async def open_conversation(
        self, *, user_id: uuid.UUID, session_id: str | None, now: datetime
    ) -> AsyncIterator[Conversation]:
        messages = self.sessions.get(session_id) if session_id is not None else None
        if session_id is None or messages is None:
            # Unknown or expired id: a new session, as the original design does.
            session_id = new_session_id(now)
            messages = self.sessions[session_id] = []
        yield Conversation(session_id, messages, user_id)
        self.last_activity[session_id] = now

    async def seed(self, sessions: Sequence[SeedSession]) -> None:
        for s in sessions:
            self.sessions[s.session_id] = [
                _message_json(m.role, m.content, s.last_activity_at) for m in s.messages
            ]
            self.last_activity[s.session_id] = s.last_activity_at

    async def turn(self, *, user_id: uuid.UUID, session_id: str | None, message: str) -> str:
        return await blob_turn(
            self, user_id=user_id, session_id=session_id, message=message, assistant=self.assistant
        )

    async def close(self) -> None:
        self.sessions.clear()


# --------------------------------------------------------------------------- 2. Redis


class RedisStore:
    """Option 1: one JSON value per session; GET, parse, append, SET ... EX 1800."""

    name = "Redis JSON blob"
    durable = False  # as configured here: no AOF fsync per write

    def __init__(self, client: Any, key_prefix: str) -> None:
        self.redis = client
        self.prefix = key_prefix
        self.assistant = EchoAssistant()

    @classmethod
    async def connect(cls, url: str, key_prefix: str) -> RedisStore:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url)
        await client.ping()
        return cls(client, key_prefix)

    def key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    @contextlib.asynccontextmanager
    async def open_conversation(
        self, *, user_id: uuid.UUID, session_id: str | None, now: datetime
    ) -> AsyncIterator[Conversation]:
        if session_id is None:
            session_id = new_session_id(now)
            messages: list[dict[str, Any]] = []
        else:
            data = await self.redis.get(self.key(session_id))
            messages = json.loads(data) if data else []
        convo = Conversation(session_id, messages, user_id)
        yield convo
        await self.redis.set(
            self.key(session_id), json.dumps(convo.messages), ex=SESSION_TTL_SECONDS
        )

    async def seed(self, sessions: Sequence[SeedSession]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for s in sessions:
                body = [_message_json(m.role, m.content, s.last_activity_at) for m in s.messages]
                pipe.set(self.key(s.session_id), json.dumps(body), ex=SESSION_TTL_SECONDS)
            await pipe.execute()

    async def turn(self, *, user_id: uuid.UUID, session_id: str | None, message: str) -> str:
        return await blob_turn(
            self, user_id=user_id, session_id=session_id, message=message, assistant=self.assistant
        )

    async def close(self) -> None:
        cursor = 0
        while True:
            cursor, keys = await self.redis.scan(cursor, match=f"{self.prefix}*", count=1000)
            if keys:
                await self.redis.delete(*keys)
            if cursor == 0:
                break
        await self.redis.aclose()


# --------------------------------------------------------------------------- 3. Postgres JSONB

BLOB_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
  session_id VARCHAR(100) PRIMARY KEY,
  messages JSONB,
  last_activity TIMESTAMP,
  user_id VARCHAR(100)
)
"""


class PostgresBlobStore:
    """Option 2: the original design's `sessions` table, messages rewritten as one JSONB value.

    Each turn is one transaction that locks its row (SELECT ... FOR UPDATE), so two turns
    of one session cannot lose each other's messages: the least a durable version needs.
    """

    name = "Postgres JSONB blob"
    durable = True

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.assistant = EchoAssistant()

    @classmethod
    async def connect(cls, url: str, pool_size: int = 10) -> PostgresBlobStore:
        pool = await asyncpg.create_pool(plain_dsn(url), min_size=1, max_size=pool_size)
        async with pool.acquire() as conn:
            await conn.execute(BLOB_TABLE_DDL)
        return cls(pool)

    @contextlib.asynccontextmanager
    async def open_conversation(
        self, *, user_id: uuid.UUID, session_id: str | None, now: datetime
    ) -> AsyncIterator[Conversation]:
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        async with self.pool.acquire() as conn, conn.transaction():
            data = None
            if session_id is None:
                session_id = new_session_id(now)
            else:
                data = await conn.fetchval(
                    "SELECT messages FROM sessions WHERE session_id = $1 FOR UPDATE", session_id
                )
            convo = Conversation(session_id, json.loads(data) if data else [], user_id)
            yield convo
            await conn.execute(
                """
                INSERT INTO sessions (session_id, messages, last_activity, user_id)
                VALUES ($1, $2::jsonb, $3, $4)
                ON CONFLICT (session_id) DO UPDATE
                SET messages = EXCLUDED.messages, last_activity = EXCLUDED.last_activity
                """,
                session_id,
                json.dumps(convo.messages),
                naive_now,
                str(user_id),
            )

    async def seed(self, sessions: Sequence[SeedSession]) -> None:
        records = [
            (
                s.session_id,
                json.dumps(
                    [_message_json(m.role, m.content, s.last_activity_at) for m in s.messages]
                ),
                s.last_activity_at.astimezone(UTC).replace(tzinfo=None),
                str(s.user_id),
            )
            for s in sessions
        ]
        async with self.pool.acquire() as conn:
            await conn.copy_records_to_table(
                "sessions",
                records=records,
                columns=["session_id", "messages", "last_activity", "user_id"],
            )
            await conn.execute("VACUUM ANALYZE sessions")

    async def turn(self, *, user_id: uuid.UUID, session_id: str | None, message: str) -> str:
        return await blob_turn(
            self, user_id=user_id, session_id=session_id, message=message, assistant=self.assistant
        )

    async def close(self) -> None:
        await self.pool.close()


# --------------------------------------------------------------------------- Chatkeep's tables


async def copy_chatkeep_sessions(conn: asyncpg.Connection, sessions: Sequence[SeedSession]) -> None:
    """Bulk-load conversations into chat_session/chat_message as the app would have stored them."""
    await conn.copy_records_to_table(
        "chat_session",
        records=[
            (
                s.session_id,
                s.user_id,
                s.messages[0].content[:80] if s.messages else "New conversation",
                "active",
                s.last_activity_at - timedelta(minutes=1),
                s.last_activity_at,
                None,
                len(s.messages),
                len(s.messages) or None,
            )
            for s in sessions
        ],
        columns=[
            "id",
            "user_id",
            "title",
            "status",
            "created_at",
            "last_activity_at",
            "archived_at",
            "message_count",
            "head_seq",
        ],
    )
    rows: list[tuple[Any, ...]] = []
    for s in sessions:
        for seq, m in enumerate(s.messages, start=1):
            meta = "{}" if m.role == "user" else '{"assistant": "echo"}'
            rows.append(
                (
                    s.session_id,
                    seq,
                    seq - 1 or None,
                    seq,
                    s.user_id,
                    m.role,
                    m.content,
                    None,
                    meta,
                    s.last_activity_at,
                )
            )
            if len(rows) >= 20_000:
                await _copy_messages(conn, rows)
                rows = []
    if rows:
        await _copy_messages(conn, rows)


async def _copy_messages(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        "chat_message",
        records=rows,
        columns=[
            "session_id",
            "seq",
            "parent_seq",
            "depth",
            "user_id",
            "role",
            "content",
            "image_url",
            "metadata",
            "created_at",
        ],
    )


# --------------------------------------------------------------------------- 4. Chatkeep


def bench_settings(url: str) -> Settings:
    """The app's own defaults (pool, timeouts), pointed at a bench database."""
    return Settings(
        app_env="test",
        database_url=url,
        secret_key="bench-secret-" + "x" * 40,
        sweeper_enabled=False,
        log_level="WARNING",
    )


class ChatkeepStore:
    """Chatkeep as built: `chat_turn` in a real AsyncSession, committed like a request."""

    name = "Chatkeep (append-only)"
    durable = True

    def __init__(self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.assistant = EchoAssistant()
        self.bus = EventBus(Hub(replay_size=1))  # no listeners here: events go nowhere
        self.raw_url = ""

    @classmethod
    def connect(cls, url: str) -> ChatkeepStore:
        engine = create_engine(bench_settings(url), url)
        store = cls(engine, create_sessionmaker(engine))
        store.raw_url = url
        return store

    async def seed(self, sessions: Sequence[SeedSession]) -> None:
        conn = await asyncpg.connect(plain_dsn(self.raw_url))
        try:
            await copy_chatkeep_sessions(conn, sessions)
        finally:
            await conn.close()

    async def turn(self, *, user_id: uuid.UUID, session_id: str | None, message: str) -> str:
        # What POST /api/chat does, minus HTTP and sign-in: open the turn in one short
        # transaction, write the reply with no connection held, close it in another.
        now = datetime.now(UTC)
        async with self.sessionmaker() as session:
            opened = await open_turn(
                db=session,
                bus=self.bus,
                assistant=self.assistant,
                request=TurnRequest(
                    user_id=user_id, session_id=session_id, message=message, context=None
                ),
                now=now,
                ttl_seconds=SESSION_TTL_SECONDS,
                limits=LIMITS,
                stale_seconds=60,
            )
        assert isinstance(opened, OpenedTurn)
        out = LiveTurn(opened, max_chars=MAX_REPLY_CHARS)
        await self.assistant.generate(
            turn=opened.input, prepared=opened.prepared, out=out, reader=self.sessionmaker
        )
        await close_turn(
            sessionmaker=self.sessionmaker,
            bus=self.bus,
            opened=opened,
            text=out.text,
            outcome=out.outcome,
            stopped=False,
            usage=None,
            now=now,
        )
        return opened.session_id

    async def close(self) -> None:
        await self.engine.dispose()


# --------------------------------------------------------------------------- 5. the floor

_FLOOR_LOCK = "SELECT message_count FROM chat_session WHERE id = $1 AND user_id = $2 FOR UPDATE"
_FLOOR_CONTEXT = """
SELECT role, content FROM chat_message WHERE session_id = $1 AND user_id = $2
ORDER BY seq DESC LIMIT $3
"""
# One statement for the opening's three writes, as Chatkeep batches them.
_FLOOR_OPEN = """
WITH m AS (
    INSERT INTO chat_message (session_id, seq, parent_seq, depth, user_id, role, content,
                              metadata, created_at)
    VALUES ($1, $2, NULLIF($2 - 1, 0), $2, $3, 'user', $4, '{}'::jsonb, $5)
), t AS (
    INSERT INTO chat_turn (id, user_id, session_id, status, user_seq, assistant,
                           started_at, heartbeat_at)
    VALUES ($6, $3, $1, 'generating', $2, 'floor', $5, $5)
)
UPDATE chat_session SET message_count = $2, head_seq = $2, last_activity_at = $5
WHERE id = $1 AND user_id = $3
"""
# And one for the closing: lock, end the turn, append the reply, count it.
_FLOOR_CLOSE = """
WITH s AS (
    SELECT id FROM chat_session WHERE id = $1 AND user_id = $3 FOR UPDATE
), t AS (
    UPDATE chat_turn SET status = 'done', reply_seq = $2, finished_at = $5
    WHERE id = $6 AND user_id = $3 AND status = 'generating' AND EXISTS (SELECT 1 FROM s)
), m AS (
    INSERT INTO chat_message (session_id, seq, parent_seq, depth, user_id, role, content,
                              metadata, created_at)
    SELECT $1, $2, $2 - 1, $2, $3, 'assistant', $4, '{}'::jsonb, $5 FROM s
)
UPDATE chat_session SET message_count = $2, head_seq = $2, last_activity_at = $5
WHERE id = (SELECT id FROM s) AND user_id = $3
"""
_FLOOR_NEW = """
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at, message_count)
VALUES ($1, $2, left($3, 80), 'active', $4, $4, 0)
"""
# What Chatkeep's opening reads for the model (CONTEXT_MAX_MESSAGES' default).
FLOOR_CONTEXT_MESSAGES = 50


class FloorStore:
    """The bare database work of one durable turn as Chatkeep shapes it, in asyncpg: two
    short transactions around the model's reply, with the writes batched as Chatkeep
    batches them. Open: lock the session row (or start the session), read the context,
    then one statement appends the user's message, records the turn and updates the
    session; commit. Close: one statement locks the row, ends the turn, appends the reply
    and updates the session; commit. No ORM, no ledger, no live events, no sign-in."""

    name = "floor (asyncpg, bare SQL)"
    durable = True

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self.pool = pool
        self.url = url

    @classmethod
    async def connect(cls, url: str, pool_size: int = 10) -> FloorStore:
        return cls(await asyncpg.create_pool(plain_dsn(url), min_size=1, max_size=pool_size), url)

    async def seed(self, sessions: Sequence[SeedSession]) -> None:
        async with self.pool.acquire() as conn:
            await copy_chatkeep_sessions(conn, sessions)

    async def turn(self, *, user_id: uuid.UUID, session_id: str | None, message: str) -> str:
        now = datetime.now(UTC)
        turn_id = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            count = None
            if session_id is not None:
                count = await conn.fetchval(_FLOOR_LOCK, session_id, user_id)
            if session_id is None or count is None:
                session_id = new_session_id(now)
                await conn.execute(_FLOOR_NEW, session_id, user_id, message, now)
                count = 0
            else:
                await conn.fetch(_FLOOR_CONTEXT, session_id, user_id, FLOOR_CONTEXT_MESSAGES)
            await conn.execute(_FLOOR_OPEN, session_id, count + 1, user_id, message, now, turn_id)
        # (the model writes here, no connection held)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_FLOOR_CLOSE, session_id, count + 2, user_id, REPLY, now, turn_id)
        return session_id

    async def close(self) -> None:
        await self.pool.close()
