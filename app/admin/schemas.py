from __future__ import annotations

from pydantic import BaseModel


class StatsOut(BaseModel):
    active: int
    archived: int
    total: int
    messages: int
    users: int


class CleanupOut(BaseModel):
    archived: int
