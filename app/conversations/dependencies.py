from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from app.auth.dependencies import CurrentUser
from app.conversations.models import ChatSession
from app.conversations.service import get_owned_session
from app.core.clock import Clock
from app.core.db import SessionDep


async def get_clock(request: Request) -> Clock:
    # async: a plain `def` dependency would run in the thread pool on every request
    clock: Clock = request.app.state.clock
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]


async def owned_session_from_path(
    session: SessionDep,
    user: CurrentUser,
    session_id: Annotated[str, Path(max_length=200, description="A session id from /api/chat")],
) -> ChatSession:
    return await get_owned_session(session=session, user_id=user.id, session_id=session_id)


OwnedSession = Annotated[ChatSession, Depends(owned_session_from_path)]
