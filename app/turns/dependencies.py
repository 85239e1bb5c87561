"""What the turn routes take from the app, in one dependency: a request solves it once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.assistant.base import Assistant
from app.core.clock import Clock
from app.core.config import Settings
from app.events.bus import EventBus
from app.turns.runner import TurnRunner
from app.turns.stream import FollowContext


@dataclass(frozen=True)
class TurnServices:
    settings: Settings
    clock: Clock
    runner: TurnRunner
    bus: EventBus
    assistant: Assistant
    sessionmaker: async_sessionmaker[AsyncSession]

    def follow_context(self) -> FollowContext:
        return FollowContext(
            runner=self.runner,
            sessionmaker=self.sessionmaker,
            bus=self.bus,
            clock=self.clock,
            heartbeat_seconds=self.settings.sse_heartbeat_seconds,
            stale_seconds=self.settings.turn_stale_seconds,
        )


# One dependency rather than six: `POST /api/chat` is the hottest route, and each
# dependency costs FastAPI a solve per request. Read per request, as tests swap the
# assistant on a running app.
async def get_turn_services(request: Request) -> TurnServices:
    state = request.app.state
    return TurnServices(
        settings=state.settings,
        clock=state.clock,
        runner=state.turns,
        bus=state.events,
        assistant=state.assistant,
        sessionmaker=state.sessionmaker,
    )


TurnServicesDep = Annotated[TurnServices, Depends(get_turn_services)]
