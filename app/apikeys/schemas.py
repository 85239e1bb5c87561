from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from app.apikeys.models import NAME_MAX_CHARS
from app.core.schemas import ApiModel


def _name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Give the key a name.")
    return value


class ApiKeyCreate(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS), AfterValidator(_name)]


class ApiKeyOut(ApiModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiModel):
    """The answer to making a key: the only one that holds the key itself."""

    id: uuid.UUID
    name: str
    key: str
    prefix: str
    created_at: datetime


class ApiKeysOut(ApiModel):
    keys: list[ApiKeyOut]
