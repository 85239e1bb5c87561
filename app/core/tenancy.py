"""Ownership in one place: the schema that enforces it and the statements that respect it.

Every tenant table carries `user_id`. In the schema, a row that points at another tenant
row (a message at its conversation, a draft version at its image) points at the pair
(id, user_id) of it, so the database refuses a row whose owner differs from what it
points at (`same_owner_fk`, `owner_key`).

In queries, a statement on a tenant table starts here and the owner filter is written
once: `owned(Model, user_id)` is `SELECT ... FROM table WHERE user_id = :user_id`,
`owned(table, user_id, col_a, col_b)` selects those columns, `owned_by(table, user_id)` is
the condition itself (for joins and subqueries), and `owned_update` / `owned_delete` do the
same for writes. Each returns a plain SQLAlchemy statement to extend with `.where()`,
`.order_by()`, `.with_for_update()`: building it is an attribute lookup and one comparison,
and the SQL is the same as a filter written by hand, so it costs no round trip and leaves
the statement cache as it was.

These are used by repositories (a domain's `repository.py`), the only modules that write
SQL over tenant tables. Only operator repositories (the sweeper, the trash purge, the admin
delete, key rotation) read across users, and their names say so.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, TypeVar, overload

import sqlalchemy as sa

OWNER_COLUMN = "user_id"
_Model = TypeVar("_Model")


# ------------------------------------------------------------------------------ schema


def owner_key(table: str) -> sa.UniqueConstraint:
    """UNIQUE (id, user_id): what `same_owner_fk` points at. `id` alone stays the key."""
    return sa.UniqueConstraint("id", OWNER_COLUMN, name=f"uq_{table}_id_{OWNER_COLUMN}")


def same_owner_fk(
    table: str,
    column: str,
    referred: str,
    *,
    ondelete: Literal["CASCADE", "SET NULL"] = "CASCADE",
) -> sa.ForeignKeyConstraint:
    """`(column, user_id) -> referred (id, user_id)`: the row and what it points at have
    the same owner, or the database refuses the row.

    "SET NULL" clears only `column` when the referred row goes (PostgreSQL 15+); the row
    keeps its owner. A row whose `column` is null is not checked (MATCH SIMPLE).
    """
    action = f"SET NULL ({column})" if ondelete == "SET NULL" else ondelete
    return sa.ForeignKeyConstraint(
        [column, OWNER_COLUMN],
        [f"{referred}.id", f"{referred}.{OWNER_COLUMN}"],
        name=f"fk_{table}_{column}_{OWNER_COLUMN}_{referred}",
        ondelete=action,
    )


# ----------------------------------------------------------------------------- queries


def owner_column(target: Any) -> Any:
    """The `user_id` column of a table model, a Table, or an alias or subquery of one."""
    column = (
        getattr(target, OWNER_COLUMN, None)
        if isinstance(target, type)
        else target.c.get(OWNER_COLUMN)
    )
    if column is None:
        raise TypeError(f"{target!r} has no {OWNER_COLUMN} column: it is not a tenant table")
    return column


def owned_by(target: Any, user_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """`target.user_id = :user_id`. A missing owner is a bug, never "everyone"."""
    if user_id is None:
        raise TypeError("owned_by needs the owner's id, not None")
    condition: sa.ColumnElement[bool] = owner_column(target) == user_id
    return condition


@overload
def owned(target: type[_Model], user_id: uuid.UUID) -> sa.Select[tuple[_Model]]: ...
@overload
def owned(target: Any, user_id: uuid.UUID, *columns: Any) -> sa.Select[Any]: ...


def owned(target: Any, user_id: uuid.UUID, *columns: Any) -> sa.Select[Any]:
    """SELECT `columns` (or the whole model or table) FROM `target` of this owner."""
    stmt = sa.select(*columns) if columns else sa.select(target)
    return stmt.where(owned_by(target, user_id))


def owned_update(target: Any, user_id: uuid.UUID) -> sa.Update:
    """UPDATE `target` ... WHERE user_id = :user_id (add the rest with `.where`)."""
    return sa.update(target).where(owned_by(target, user_id))


def owned_delete(target: Any, user_id: uuid.UUID) -> sa.Delete:
    """DELETE FROM `target` WHERE user_id = :user_id (add the rest with `.where`)."""
    return sa.delete(target).where(owned_by(target, user_id))
