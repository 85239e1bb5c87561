from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from app.core.dependencies import SettingsDep
from app.sharing.schemas import SharedOut


async def share_base(request: Request, settings: SettingsDep) -> str:
    """Where share links point: PUBLIC_URL, else the address the owner reached us at."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


ShareBase = Annotated[str, Depends(share_base)]


def share_url(base: str, token: str) -> str:
    return f"{base}/s/{token}"


def shared_out(
    *, base: str, token: str | None, expires_at: datetime | None, now: datetime
) -> SharedOut | None:
    """What a conversation's summary says of its link: null unless it still opens."""
    if token is None or (expires_at is not None and expires_at <= now):
        return None
    return SharedOut(url=share_url(base, token), expires_at=expires_at)
