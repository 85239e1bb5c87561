"""The SQL of deleting an account: every row of one user, in every tenant table.

`AccountRepository(session, owner_id)` is built for the user whose account it is: it walks
the metadata for every table with a `user_id` column (so a table added later is covered
the day it is added) and deletes that owner's rows, children before parents.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import app.models  # noqa: F401  (every domain's tables, for the tenant-table walk)
from app.auth.models import User
from app.core.db import metadata
from app.core.tenancy import owned_delete


def tenant_tables() -> list[sa.Table]:
    """Every table with a `user_id` column, children before parents."""
    return [t for t in reversed(metadata.sorted_tables) if "user_id" in t.c]


class AccountRepository:
    """One user's rows across every domain."""

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        if owner_id is None:
            raise TypeError("a repository needs its owner's id, not None")
        self.session = session
        self.owner_id = owner_id

    async def delete_everything(self) -> dict[str, int]:
        """Deletes the owner's rows of every tenant table, then the user; returns the rows
        deleted per table."""
        counts: dict[str, int] = {}
        for table in tenant_tables():
            result = await self.session.execute(owned_delete(table, self.owner_id))
            counts[table.name] = int(getattr(result, "rowcount", 0) or 0)
        await self.session.execute(sa.delete(User).where(col(User.id) == self.owner_id))
        return counts
