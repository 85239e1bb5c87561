from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.auth.dependencies import CurrentUser
from app.conversations.models import ChatSession
from app.conversations.service import get_owned_session
from app.core.db import SessionDep


async def owned_session_from_path(
    session: SessionDep,
    user: CurrentUser,
    session_id: Annotated[str, Path(max_length=200, description="A session id from /api/chat")],
) -> ChatSession:
    return await get_owned_session(session=session, user_id=user.id, session_id=session_id)


OwnedSession = Annotated[ChatSession, Depends(owned_session_from_path)]
