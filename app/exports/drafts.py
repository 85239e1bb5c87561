"""The drafts of a conversation, for the export: a hook into the drafting assistant.

Exports carry `"drafts": [...]` per conversation. What goes in there belongs to the
assistant's drafts ledger: if `app.assistant.ledger` defines
`async export_drafts(session, user_id, session_id) -> list[dict]` (JSON-ready dicts), its
result is used; otherwise the list is empty. It is looked up when called, so the export
does not depend on the assistant package at import time.
"""

from __future__ import annotations

import importlib
import inspect
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

LEDGER_MODULE = "app.assistant.ledger"


def _exporter() -> Any:
    try:
        module = importlib.import_module(LEDGER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in (LEDGER_MODULE, LEDGER_MODULE.rsplit(".", 1)[0]):
            return None
        raise
    return getattr(module, "export_drafts", None)


async def collect_drafts(
    session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> list[dict[str, Any]]:
    exporter = _exporter()
    if exporter is None:
        return []
    result = exporter(session, user_id, session_id)
    if inspect.isawaitable(result):
        result = await result
    return list(result or [])
