"""The structure the code promises, checked on the code itself."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from app.auth.db import UserDatabase, get_user_db
from app.core.runtime import PROJECT_ROOT

APP = PROJECT_ROOT / "app"
UNIT_OF_WORK = APP / "core" / "db.py"


def _calls(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            found.append((node.lineno, node.func.attr))
    return found


def test_every_commit_goes_through_the_unit_of_work() -> None:
    """`session.commit()` and `session.begin()` are written once, in app/core/db.py: every
    other writer commits with `commit(session, hooks)` or `unit_of_work(...)`, so staged
    events always leave with their rows."""
    stray = [
        f"{path.relative_to(PROJECT_ROOT)}:{line} .{name}()"
        for path in sorted(APP.rglob("*.py"))
        if path != UNIT_OF_WORK
        for line, name in _calls(path)
        if name in {"commit", "begin"}
    ]
    assert stray == []


def test_the_user_adapter_commits_through_the_unit_of_work() -> None:
    """fastapi-users' SQLAlchemy adapter commits by itself; ours overrides every method of
    it that does, so a user's change commits through `app.core.db.commit` too."""
    committing = set()
    tree = ast.parse(inspect.getsource(SQLAlchemyUserDatabase))
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            isinstance(n, ast.Attribute) and n.attr == "commit" for n in ast.walk(func)
        ):
            committing.add(func.name)
    assert {"create", "update", "delete"} <= committing
    # OAuth accounts are not used (`get_user_db` names no table for them): those methods
    # refuse before they write.
    assert "oauth_account_table" not in inspect.getsource(get_user_db)
    committing -= {"add_oauth_account", "update_oauth_account"}
    kept = sorted(name for name in committing if name not in vars(UserDatabase))
    assert kept == []


def test_no_import_inside_a_function_but_the_lazy_ones() -> None:
    """Imports live at the top of a module; the only exceptions load something heavy on
    first use (PDF layout, image cards, the model clients, the embedded server) or keep the
    CLI quick to start. A new one is most likely dodging a cycle the layers forbid."""
    lazy_targets = {
        "app.typesetting.pdf",
        "app.imaging.cards",
        "app.assistant.openai_compat",
        "app.assistant.local_model",
        "app.core.embedded",
    }
    stray = []
    for path in sorted(APP.rglob("*.py")):
        if path == APP / "cli.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app"):
                    if node.module not in lazy_targets:
                        stray.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
                elif isinstance(node, ast.Import) and any(
                    a.name.startswith("app") for a in node.names
                ):
                    stray.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert stray == []
