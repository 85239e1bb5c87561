"""The backstop: PostgreSQL ends an app connection left idle inside a transaction."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
import sqlalchemy as sa

from app.core.db import create_engine, plain_dsn

pytestmark = pytest.mark.storage


async def _alive(database_url: str, pid: int) -> bool:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        found = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
        return bool(found)
    finally:
        await conn.close()


async def test_a_connection_idle_in_a_transaction_is_ended_and_replaced(settings, database_url):
    settings.db_idle_in_transaction_timeout_ms = 200
    engine = create_engine(settings, database_url)
    try:
        async with engine.connect() as conn:
            shown = await conn.scalar(sa.text("SHOW idle_in_transaction_session_timeout"))
            assert shown == "200ms"
            # A transaction is open (autobegin), and the app stops talking to it.
            pid = await conn.scalar(sa.text("SELECT pg_backend_pid()"))
            deadline = time.monotonic() + 30
            while await _alive(database_url, pid):
                assert time.monotonic() < deadline, "the idle transaction was never ended"
                await asyncio.sleep(0.1)
            with pytest.raises(sa.exc.DBAPIError):
                await conn.execute(sa.text("SELECT 1"))
        # The pool replaces what the server ended.
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_not_sent_through_pgbouncer_nor_when_off(settings, database_url):
    async def shown() -> str:
        engine = create_engine(settings, database_url)
        try:
            async with engine.connect() as conn:
                return str(await conn.scalar(sa.text("SHOW idle_in_transaction_session_timeout")))
        finally:
            await engine.dispose()

    assert await shown() == "1min"  # the default
    settings.db_idle_in_transaction_timeout_ms = 0
    assert await shown() == "0"
    settings.db_idle_in_transaction_timeout_ms = 60_000
    settings.db_pooler = "pgbouncer"  # PgBouncer refuses start-up parameters it does not track
    assert await shown() == "0"
