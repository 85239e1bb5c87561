from __future__ import annotations

import uuid
from datetime import datetime

from fastapi_users import schemas
from pydantic import BaseModel, ConfigDict, EmailStr, Field
from pydantic.alias_generators import to_camel

from app.auth.passwords import MAX_PASSWORD_LENGTH

CAMEL = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class UserRead(schemas.BaseUser[uuid.UUID]):
    model_config = CAMEL


class UserCreate(schemas.BaseUserCreate):
    model_config = CAMEL


class UserUpdate(schemas.BaseUserUpdate):
    model_config = CAMEL


class MeUpdate(BaseModel):
    """PATCH /users/me: a new email and/or password, with the current password."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    email: EmailStr | None = None
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)
    current_password: str | None = Field(
        default=None,
        max_length=MAX_PASSWORD_LENGTH,
        description="Required to change the email or the password.",
    )


class CurrentPassword(BaseModel):
    """DELETE /users/me: the current password, typed again."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class SignInOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    id: uuid.UUID
    kind: str = Field(description='"cookie" (the web page) or "bearer" (an API client)')
    device: str
    ip: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool = Field(description="The sign-in this request was made with")


class SignInsOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    sign_ins: list[SignInOut]


class EndedOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    ended: int
    keys_ended: int = Field(default=0, description="API keys revoked with them")
