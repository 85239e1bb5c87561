"""Statements built once: SQLAlchemy Core, compiled to PostgreSQL's text at import.

A statement that runs on every request (the sign-in lookup) or every turn (app/turns)
is built from the tables' metadata with Core, as any other, but compiled once here and
kept as a `TextClause`: a construct built or executed per call is coerced and given a
cache key each time, which costs more CPU than the database's work on its rows.
`execute` runs one on the session's Core connection, without the ORM session's
per-statement work (its result holds plain rows, never entities).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

# PostgreSQL's SQL with `:name` parameters, without the driver's bind casts (the text is
# run through `sa.text`, which reads `:name`).
DIALECT = PGDialect(paramstyle="named")  # type: ignore[no-untyped-call]
DIALECT._bind_typing_render_casts = False


def compiled(stmt: sa.ClauseElement, *typed: sa.BindParameter[Any]) -> sa.TextClause:
    """`stmt` compiled once to text (with its named parameters, typed as `typed`)."""
    built = stmt.compile(dialect=DIALECT)
    assert isinstance(built, SQLCompiler)
    anonymous = [k for k, b in built.binds.items() if b.value is not None or b.unique]
    if anonymous:  # a Python value left in the construct: it would be a missing parameter
        raise ValueError(f"prebuilt statement holds values {anonymous}: use a literal")
    return sa.text(str(built)).bindparams(*typed)


async def execute(
    session: AsyncSession, statement: sa.Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Runs `statement` in the session's transaction, on its Core connection."""
    connection = await session.connection()
    return await connection.execute(statement, params)
