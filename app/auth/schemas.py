from __future__ import annotations

import uuid

from fastapi_users import schemas
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

CAMEL = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class UserRead(schemas.BaseUser[uuid.UUID]):
    model_config = CAMEL


class UserCreate(schemas.BaseUserCreate):
    model_config = CAMEL


class UserUpdate(schemas.BaseUserUpdate):
    model_config = CAMEL
