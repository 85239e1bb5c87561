"""The drafts of a conversation, for the export: what the assistant's ledger keeps.

Exports carry `"drafts": [...]` per conversation, in the shape of the drafts API
(`app.drafts.ledger.export_drafts`, JSON-ready dicts).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.drafts import ledger

DraftExporter = Callable[[AsyncSession, uuid.UUID, str], Awaitable[list[dict[str, Any]]]]


def _exporter() -> DraftExporter:
    """The ledger's export: one seam, so tests can put drafts in without an assistant."""
    return ledger.export_drafts


async def collect_drafts(
    session: AsyncSession, user_id: uuid.UUID, session_id: str
) -> list[dict[str, Any]]:
    return list(await _exporter()(session, user_id, session_id))
