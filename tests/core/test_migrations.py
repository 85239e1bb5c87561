"""The schema comes only from migrations, and the models agree with them."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app.core.embedded import to_asyncpg_url
from app.core.runtime import alembic_config
from app.models import metadata

pytestmark = pytest.mark.storage


async def test_models_and_migrations_agree(direct_database_url):
    engine = create_async_engine(direct_database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync_conn: compare_metadata(
                    MigrationContext.configure(
                        sync_conn, opts={"compare_type": True, "compare_server_default": True}
                    ),
                    metadata,
                )
            )
    finally:
        await engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


# ------------------------------------------------------------- 0011 on existing data

_BEFORE_OWNER_KEYS = "0010"


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn=_plain(_with_database(server_url, "postgres")))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{query}" if query else "")


_SEED = """
INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, is_verified)
VALUES ('00000000-0000-4000-8000-00000000000a', 'a@example.com', 'x', true, false, true),
       ('00000000-0000-4000-8000-00000000000b', 'b@example.com', 'x', true, false, true);
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at,
                          message_count)
VALUES ('s-a', '00000000-0000-4000-8000-00000000000a', 'A', 'active', now(), now(), 1),
       ('s-b', '00000000-0000-4000-8000-00000000000b', 'B', 'active', now(), now(), 0);
INSERT INTO chat_message (session_id, seq, user_id, role, content, created_at)
VALUES ('s-a', 1, '00000000-0000-4000-8000-00000000000a', 'user', 'hi', now());
INSERT INTO chat_turn (id, user_id, session_id, status, user_seq, assistant, started_at,
                       heartbeat_at)
VALUES ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-00000000000a',
        's-a', 'done', 1, 'builtin', now(), now());
INSERT INTO stored_image (id, user_id, content_type, data, byte_size, sha256, source,
                          created_at)
VALUES ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-00000000000a',
        'image/png', '\\x89', 1, 'x', 'card', now());
INSERT INTO post_draft (id, user_id, session_id, request_message_seq, opened_message_seq,
                        platform, topic, with_image, status, current_version, created_at,
                        updated_at, published_at)
VALUES ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-00000000000a',
        's-a', 1, 1, 'facebook', 'Diwali', true, 'published', 1, now(), now(), now());
INSERT INTO post_draft_version (draft_id, version, user_id, text, image_id,
                                source_message_seq, writer, created_at)
VALUES ('00000000-0000-4000-8000-0000000000e1', 1, '00000000-0000-4000-8000-00000000000a',
        'Happy Diwali', '00000000-0000-4000-8000-0000000000d1', 1, 'builtin', now());
-- One post of a live conversation, one of a conversation deleted long ago.
INSERT INTO published_post (id, user_id, draft_id, session_id, version, platform, text,
                            image_id, publisher, published_at)
VALUES ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-00000000000a',
        '00000000-0000-4000-8000-0000000000e1', 's-a', 1, 'facebook', 'Happy Diwali',
        '00000000-0000-4000-8000-0000000000d1', 'log', now()),
       ('00000000-0000-4000-8000-0000000000f2', '00000000-0000-4000-8000-00000000000a',
        NULL, 's-gone', 1, 'facebook', 'Old news', NULL, 'log', now());
INSERT INTO chat_import (user_id, source_id, content_hash, session_id, imported_at)
VALUES ('00000000-0000-4000-8000-00000000000a', 'chatgpt:1', 'h', 's-a', now());
"""
_COUNTS = (
    "SELECT (SELECT count(*) FROM chat_session), (SELECT count(*) FROM chat_message),"
    " (SELECT count(*) FROM chat_turn), (SELECT count(*) FROM post_draft),"
    " (SELECT count(*) FROM post_draft_version), (SELECT count(*) FROM published_post),"
    " (SELECT count(*) FROM stored_image), (SELECT count(*) FROM chat_import)"
)


async def test_owner_keys_migrate_a_database_with_data(server_url):
    name = f"chatkeep_migrate_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    base = server_url if "+asyncpg" in server_url else to_asyncpg_url(server_url)
    url = _with_database(base, name)
    config = alembic_config(url)
    try:
        await asyncio.to_thread(command.upgrade, config, _BEFORE_OWNER_KEYS)
        conn = await asyncpg.connect(dsn=_plain(url))
        try:
            await conn.execute(_SEED)
            before = tuple(await conn.fetchrow(_COUNTS))
        finally:
            await conn.close()

        await asyncio.to_thread(command.upgrade, config, "head")
        conn = await asyncpg.connect(dsn=_plain(url))
        try:
            assert tuple(await conn.fetchrow(_COUNTS)) == before
            posts = dict(await conn.fetch("SELECT text, session_id FROM published_post"))
            assert posts == {"Happy Diwali": "s-a", "Old news": None}
            # The keys hold now: B's row in A's conversation is refused ...
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(
                    "INSERT INTO chat_message (session_id, seq, user_id, role, content,"
                    " created_at, depth) VALUES ('s-a', 2,"
                    " '00000000-0000-4000-8000-00000000000b', 'user', 'mine now', now(), 2)"
                )
            # ... and deleting the conversation keeps the delete rules it had.
            await conn.execute("DELETE FROM chat_session WHERE id = 's-a'")
            after = tuple(await conn.fetchrow(_COUNTS))
            assert after == (1, 0, 0, 0, 0, 2, 1, 0)
            post = await conn.fetchrow(
                "SELECT user_id, session_id, draft_id, image_id FROM published_post"
                " WHERE text = 'Happy Diwali'"
            )
            assert post["session_id"] is None and post["draft_id"] is None
            assert str(post["user_id"]).endswith("0a") and post["image_id"] is not None
        finally:
            await conn.close()

        # And back down, and up again.
        await asyncio.to_thread(command.downgrade, config, _BEFORE_OWNER_KEYS)
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------- 0015 on existing data

_BEFORE_TREES = "0014"
_CHAINS = """
INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, is_verified)
VALUES ('00000000-0000-4000-8000-00000000000a', 'a@example.com', 'x', true, false, true);
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at,
                          message_count)
VALUES ('s-long', '00000000-0000-4000-8000-00000000000a', 'L', 'active', now(), now(), 3),
       ('s-one', '00000000-0000-4000-8000-00000000000a', 'O', 'archived', now(), now(), 1),
       ('s-empty', '00000000-0000-4000-8000-00000000000a', 'E', 'active', now(), now(), 0);
INSERT INTO chat_message (session_id, seq, user_id, role, content, created_at)
VALUES ('s-long', 1, '00000000-0000-4000-8000-00000000000a', 'user', 'hi', now()),
       ('s-long', 2, '00000000-0000-4000-8000-00000000000a', 'assistant', 'hello', now()),
       ('s-long', 3, '00000000-0000-4000-8000-00000000000a', 'user', 'bye', now()),
       ('s-one', 1, '00000000-0000-4000-8000-00000000000a', 'user', 'alone', now());
"""


async def test_trees_migrate_a_database_with_data(server_url):
    """Every conversation becomes a chain: parent = seq - 1, depth = seq, head = last."""
    name = f"chatkeep_migrate_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    base = server_url if "+asyncpg" in server_url else to_asyncpg_url(server_url)
    url = _with_database(base, name)
    config = alembic_config(url)
    try:
        await asyncio.to_thread(command.upgrade, config, _BEFORE_TREES)
        conn = await asyncpg.connect(dsn=_plain(url))
        try:
            await conn.execute(_CHAINS)
        finally:
            await conn.close()

        await asyncio.to_thread(command.upgrade, config, "head")
        conn = await asyncpg.connect(dsn=_plain(url))
        try:
            rows = await conn.fetch(
                "SELECT session_id, seq, parent_seq, depth FROM chat_message"
                " ORDER BY session_id, seq"
            )
            assert [tuple(r) for r in rows] == [
                ("s-long", 1, None, 1),
                ("s-long", 2, 1, 2),
                ("s-long", 3, 2, 3),
                ("s-one", 1, None, 1),
            ]
            heads = dict(await conn.fetch("SELECT id, head_seq FROM chat_session"))
            assert heads == {"s-long": 3, "s-one": 1, "s-empty": None}
            # A parent in another conversation, or not older, is refused.
            insert = (
                "INSERT INTO chat_message (session_id, seq, user_id, parent_seq, depth, role,"
                " content, created_at) VALUES ($1, $2, '00000000-0000-4000-8000-00000000000a',"
                " $3, 2, 'user', 'x', now())"
            )
            with pytest.raises(asyncpg.ForeignKeyViolationError):
                await conn.execute(insert, "s-one", 4, 3)
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(insert, "s-long", 4, 4)
            # A second version of message 3 (a sibling) is a child of 2.
            await conn.execute(insert, "s-long", 4, 2)
            # Deleting the conversation takes the whole tree.
            await conn.execute("DELETE FROM chat_session WHERE id = 's-long'")
            assert await conn.fetchval("SELECT count(*) FROM chat_message") == 1
        finally:
            await conn.close()

        await asyncio.to_thread(command.downgrade, config, _BEFORE_TREES)
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------- 0027 on existing data

_BEFORE_SYMBOLS = "0025"
# More messages than one batch of the fill (20,000), a symbol in some of each batch.
_MANY_MESSAGES = """
INSERT INTO app_user (id, email, hashed_password, is_active, is_superuser, is_verified)
VALUES ('00000000-0000-4000-8000-00000000000a', 'a@example.com', 'x', true, false, true);
INSERT INTO chat_session (id, user_id, title, status, created_at, last_activity_at,
                          message_count)
SELECT 's-' || lpad(g::text, 5, '0'), '00000000-0000-4000-8000-00000000000a', 'T',
       'active', now(), now(), 1
FROM generate_series(1, 25000) AS g;
INSERT INTO chat_message (session_id, seq, depth, user_id, role, content, created_at)
SELECT 's-' || lpad(g::text, 5, '0'), 1, 1, '00000000-0000-4000-8000-00000000000a', 'user',
       CASE WHEN g % 1000 = 0 THEN 'pizza 🍕🍕 for ' || g
            WHEN g % 1000 = 1 THEN 'thumbs 👍🏽 from ' || g
            ELSE 'plain $5 text ' || g END,
       now()
FROM generate_series(1, 25000) AS g;
"""


async def test_message_symbols_are_filled_on_a_database_with_data(server_url):
    name = f"chatkeep_migrate_{uuid.uuid4().hex[:10]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    base = server_url if "+asyncpg" in server_url else to_asyncpg_url(server_url)
    url = _with_database(base, name)
    config = alembic_config(url)
    try:
        await asyncio.to_thread(command.upgrade, config, _BEFORE_SYMBOLS)
        conn = await asyncpg.connect(dsn=_plain(url))
        try:
            await conn.execute(_MANY_MESSAGES)
        finally:
            await conn.close()

        await asyncio.to_thread(command.upgrade, config, "head")
        conn = await asyncpg.connect(dsn=_plain(url))
        try:
            filled = await conn.fetch(
                "SELECT content_symbols, count(*) AS n FROM chat_message"
                " GROUP BY content_symbols ORDER BY n"
            )
            by_symbols = {tuple(sorted(r["content_symbols"])): r["n"] for r in filled}
            # Every batch was filled: 25 messages with each emoji, none left out.
            assert by_symbols == {("🍕",): 25, (): 24950, ("🏽", "👍"): 25}
            # New and edited messages are filled by the trigger.
            await conn.execute(
                "INSERT INTO chat_message (session_id, seq, depth, parent_seq, user_id, role,"
                " content, created_at) VALUES ('s-00002', 2, 2, 1,"
                " '00000000-0000-4000-8000-00000000000a', 'assistant', 'ok → ✓', now())"
            )
            await conn.execute("UPDATE chat_message SET content = '' WHERE session_id = 's-01000'")
            rows = dict(
                await conn.fetch(
                    "SELECT session_id || '/' || seq, content_symbols FROM chat_message"
                    " WHERE session_id IN ('s-00002', 's-01000')"
                )
            )
            assert {k: sorted(v) for k, v in rows.items()} == {
                "s-00002/1": [],
                "s-00002/2": sorted(["→", "✓"]),
                "s-01000/1": [],
            }
        finally:
            await conn.close()

        await asyncio.to_thread(command.downgrade, config, _BEFORE_SYMBOLS)
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
