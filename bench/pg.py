"""The bench's PostgreSQL: its own server (or BENCH_DATABASE_URL) and its own databases.

Never the dev data: the embedded server lives under .data/bench-pg, and every database the
bench makes is named chatkeep_bench_<pid>_<what> and dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.core.db import plain_dsn
from app.core.embedded import start_embedded_postgres, to_asyncpg_url
from app.core.runtime import PROJECT_ROOT, run_migrations

__all__ = ["BenchServer", "connect", "plain_dsn", "with_database"]

BENCH_PGDATA = PROJECT_ROOT / ".data" / "bench-pg"


def with_database(url: str, database: str) -> str:
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


@dataclass
class BenchServer:
    """One PostgreSQL server and the databases this run made on it."""

    url: str  # postgresql+asyncpg://... of the server's maintenance database
    kind: str  # "embedded" | "BENCH_DATABASE_URL"
    handle: Any = None
    prefix: str = field(
        default_factory=lambda: f"chatkeep_bench_{os.getpid()}_{secrets.token_hex(2)}"
    )
    made: list[str] = field(default_factory=list)
    template: str | None = None

    @classmethod
    def start(cls) -> BenchServer:
        explicit = os.environ.get("BENCH_DATABASE_URL")
        if explicit:
            url = explicit if "+asyncpg" in explicit else to_asyncpg_url(explicit)
            return cls(url=url, kind="BENCH_DATABASE_URL")
        url, handle = start_embedded_postgres(BENCH_PGDATA)
        return cls(
            url=url, kind=f"embedded ({BENCH_PGDATA.relative_to(PROJECT_ROOT)})", handle=handle
        )

    @property
    def postmaster_pid(self) -> int | None:
        """The embedded server's main process (its CPU is part of the cost), if it is ours."""
        if self.handle is None:
            return None
        try:
            return int((BENCH_PGDATA / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def database_url(self, name: str) -> str:
        return with_database(self.url, name)

    async def admin(self, sql: str) -> None:
        conn = await asyncpg.connect(plain_dsn(with_database(self.url, "postgres")))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def version(self) -> str:
        conn = await asyncpg.connect(plain_dsn(with_database(self.url, "postgres")))
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    async def migrated_database(self, what: str) -> str:
        """A fresh database at the latest migration; returns its URL.

        The first one is migrated by Alembic and kept as a template; the rest are copies of
        it (CREATE DATABASE ... TEMPLATE), which takes a fraction of a second.
        """
        if self.template is None:
            self.template = f"{self.prefix}_template"
            await self.admin(f'CREATE DATABASE "{self.template}"')
            self.made.append(self.template)
            await asyncio.to_thread(run_migrations, self.database_url(self.template))
        name = f"{self.prefix}_{what}"
        for attempt in range(50):
            try:
                await self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                break
            except asyncpg.ObjectInUseError:
                # The migration's last connection may still be closing.
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self.made.append(name)
        return self.database_url(name)

    async def drop(self, url: str) -> None:
        name = url.partition("?")[0].rsplit("/", 1)[1]
        await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    async def drop_all(self) -> None:
        for name in list(reversed(self.made)):
            with contextlib.suppress(Exception):
                await self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        yield conn
    finally:
        await conn.close()


async def settle(conn: asyncpg.Connection, *tables: str) -> None:
    """After a bulk load: fresh planner statistics and no checkpoint pending mid-measurement."""
    for table in tables:
        await conn.execute(f"VACUUM ANALYZE {table}")
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


@contextlib.asynccontextmanager
async def indexes_deferred(conn: asyncpg.Connection, *tables: str) -> AsyncIterator[None]:
    """Bulk load faster: drop the tables' secondary indexes, rebuild them afterwards.

    The schema ends up exactly as migrated (same definitions, same names); building an
    index once over a million rows is several times faster than a million inserts into it.
    Constraint indexes (primary keys, uniques) stay.
    """
    rows = await conn.fetch(
        """
        SELECT i.indexname, i.indexdef
        FROM pg_indexes AS i
        WHERE i.schemaname = current_schema() AND i.tablename = ANY($1::text[])
          AND NOT EXISTS (
            SELECT 1 FROM pg_constraint AS c WHERE c.conname = i.indexname
          )
        """,
        list(tables),
    )
    for row in rows:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    try:
        yield
    finally:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for row in rows:
            await conn.execute(row["indexdef"])
        await conn.execute("RESET maintenance_work_mem")
