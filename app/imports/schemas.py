"""API shapes of the import."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import ApiModel


class ImportFailureOut(ApiModel):
    index: int = Field(description="Position of the entry in the file, from 0.")
    source_id: str | None = Field(description="The entry's id in the file, when it has one.")
    title: str | None
    code: str
    detail: str


class ImportResult(ApiModel):
    imported: int
    skipped: int
    sessions: list[str]
    failed: list[ImportFailureOut] = Field(
        default_factory=list, description="Entries of the file left out, and why."
    )
