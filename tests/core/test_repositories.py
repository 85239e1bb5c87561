"""SQL over tenant tables lives in repositories, and sealed columns are opened only there.

A tenant table is one with a `user_id` column, read from the metadata (so a new table is
covered the day it is added). The walk is syntactic: a statement (`select`, `update`,
`delete`, `insert`, the `owned*` helpers of `app.core.tenancy`, a `.where()`, a
`session.get()`) that names a tenant model or table, or a `text("...")` whose SQL names a
tenant table, must sit in a module named `repository.py`, in a `repositories/` package, in
`app/encryption/`, or in `alembic/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from sqlmodel import SQLModel

import app.models  # noqa: F401  (every table on the metadata)
from app.core.db import metadata
from app.core.runtime import PROJECT_ROOT

APP = PROJECT_ROOT / "app"

# Modules allowed to hold tenant SQL outside a repository while they are being moved onto
# one (none today). A line goes once its module holds no tenant SQL and no sealed column
# (the last test below fails until it does).
NOT_YET_CONVERTED: set[str] = set()

# Statements that are SQL over a tenant table when they name one.
STATEMENTS = {"select", "update", "delete", "insert", "where", "get"}
# The owner-filter helpers of app.core.tenancy: tenant SQL whatever they are given.
OWNER_HELPERS = {"owned", "owned_update", "owned_delete", "owned_by"}


def _tenant_tables() -> set[str]:
    return {name for name, table in metadata.tables.items() if "user_id" in table.c}


def _tenant_models(tables: set[str]) -> set[str]:
    return {
        mapper.class_.__name__
        for mapper in SQLModel._sa_registry.mappers  # type: ignore[attr-defined]
        if getattr(mapper.local_table, "name", None) in tables
    }


def _allowed(path: Path) -> bool:
    rel = path.relative_to(PROJECT_ROOT)
    return (
        # The owner-filter helpers themselves, which repositories build on.
        rel.as_posix() == "app/core/tenancy.py"
        or path.name == "repository.py"
        or "repositories" in rel.parts
        or rel.parts[:2] == ("app", "encryption")
        or rel.parts[0] == "alembic"
    )


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _tenant_aliases(tree: ast.Module, models: set[str]) -> set[str]:
    """Names bound to a tenant model or table (`_sessions = ChatSession.__table__`,
    `m = aliased(ChatMessage)`), followed to a fixed point."""
    tenant = set(models)
    while True:
        grown = set(tenant)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                value = node.value
                # Only the model itself, its table, an alias of either: not any expression
                # that happens to mention one.
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
                    if value.func.id not in {"aliased", "alias"}:
                        continue
                    mentioned = _names(value)
                elif isinstance(value, ast.Attribute | ast.Name):
                    mentioned = _names(value)
                else:
                    continue
                if mentioned & tenant:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    grown |= {t.id for t in targets if isinstance(t, ast.Name)}
        if grown == tenant:
            return tenant
        tenant = grown


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _violations(path: Path, models: set[str], tables: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    tenant = _tenant_aliases(tree, models)
    table_words = re.compile(r"\b(" + "|".join(sorted(tables)) + r")\b")
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        if name == "text" and node.args:
            sql = node.args[0]
            literal = " ".join(
                n.value
                for n in ast.walk(sql)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            )
            if table_words.search(literal):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} text()")
            continue
        if name in OWNER_HELPERS:
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {name}()")
            continue
        if name not in STATEMENTS:
            continue
        # What the statement names: its arguments (`select(ChatMessage)`,
        # `.where(_messages.c.user_id == ...)`).
        named = set()
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            named |= _names(arg)
        if name == "get":
            # session.get(Model, id): a read by id alone.
            named = _names(node.args[0]) if node.args else set()
        if named & tenant:
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {name}()")
    return found


def test_sql_over_tenant_tables_lives_in_repositories() -> None:
    tables = _tenant_tables()
    assert {"chat_session", "chat_message", "api_key", "sign_in"} <= tables
    models = _tenant_models(tables)
    assert {"ChatSession", "ChatMessage", "ApiKey", "SignIn"} <= models
    stray = []
    for path in sorted(APP.rglob("*.py")):
        rel = str(path.relative_to(PROJECT_ROOT))
        if _allowed(path) or rel in NOT_YET_CONVERTED:
            continue
        stray += _violations(path, models, tables)
    assert stray == []


OPENERS = {"open_column", "open_message", "seal_row", "seal_values"}
_SEALED = re.compile(r"\b\w+_sealed\b")


def _sealed_uses(path: Path, *, declaring: bool) -> list[str]:
    """`*_sealed` names, attributes and strings, and calls of the sealing helpers. A
    models module (`declaring`) may name the columns it declares, never open one."""
    rel = path.relative_to(PROJECT_ROOT)
    tree = ast.parse(path.read_text(), filename=str(path))
    # Docstrings are prose: they may name a column.
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in OPENERS:
            found.append(f"{rel}:{node.lineno} {_call_name(node)}()")
        if declaring:
            continue
        if isinstance(node, ast.Attribute) and _SEALED.fullmatch(node.attr):
            found.append(f"{rel}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.Name) and _SEALED.fullmatch(node.id):
            found.append(f"{rel}:{node.lineno} {node.id}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in prose
            and _SEALED.search(node.value)
        ):
            found.append(f"{rel}:{node.lineno} {node.value[:40]!r}")
    return found


def test_sealed_columns_only_in_encryption_and_repositories() -> None:
    """Sealed columns are read, written and opened only by app/encryption and the
    repositories (a plain-SQL read elsewhere would silently return blanks with keys on);
    the models declare them."""
    stray = []
    for path in sorted(APP.rglob("*.py")):
        rel = str(path.relative_to(PROJECT_ROOT))
        if _allowed(path) or rel in NOT_YET_CONVERTED:
            continue
        stray += _sealed_uses(path, declaring=path.name == "models.py")
    assert stray == []


def test_the_allowlist_holds_only_what_still_needs_converting() -> None:
    """Each module left to convert still exists and still has tenant SQL or sealed
    columns; once it has none (or is gone), its line in NOT_YET_CONVERTED goes."""
    tables = _tenant_tables()
    models = _tenant_models(tables)
    done = [
        rel
        for rel in sorted(NOT_YET_CONVERTED)
        if not (PROJECT_ROOT / rel).exists()
        or (
            not _violations(PROJECT_ROOT / rel, models, tables)
            and not _sealed_uses(PROJECT_ROOT / rel, declaring=rel.endswith("models.py"))
        )
    ]
    assert done == []


# Repositories built without an owner that look rows up by a secret instead (a share
# link's token, a request's credential), not across users.
KEYED = {"CredentialRepository", "PublicShareRepository"}
OWNER_ARGUMENTS = {"owner_id", "user_id"}


def test_a_repository_without_an_owner_says_it_is_an_operators():
    """A repository is built for one owner (its constructor takes `owner_id` or
    `user_id`); one that is not works across users, and its name says so
    (`...OperatorRepository`), unless it looks rows up by a secret (KEYED)."""
    owned, unnamed = [], []
    for path in sorted(APP.rglob("repository.py")):
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if not isinstance(node, ast.ClassDef):
                continue
            init = next(
                (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"),
                None,
            )
            if init is None:  # a row or a result, not a repository
                continue
            arguments = {a.arg for a in [*init.args.args, *init.args.kwonlyargs]}
            if arguments & OWNER_ARGUMENTS:
                owned.append(node.name)
            elif not node.name.endswith("OperatorRepository") and node.name not in KEYED:
                unnamed.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {node.name}")
    assert {"ConversationRepository", "TurnRepository", "DraftRepository"} <= set(owned)
    assert unnamed == []
