from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.auth.manager import fastapi_users
from app.auth.models import User

current_active_user = fastapi_users.current_user(active=True)
current_superuser = fastapi_users.current_user(active=True, superuser=True)

CurrentUser = Annotated[User, Depends(current_active_user)]
SuperUser = Annotated[User, Depends(current_superuser)]
