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


class LocalModelOut(BaseModel):
    running: bool
    generating: int
    waiting: int
    parallel: int
    queue_size: int


class AssistantAdminOut(BaseModel):
    """Who answers, in an administrator's terms: the settings and how to change them."""

    backend: str
    model: str | None
    label: str
    settings: dict[str, str]
    connect_a_bigger_model: str
    local_model: LocalModelOut | None
    # Every model conversations may choose (the default first): id, name, backend.
    models: list[dict[str, str]] = []
