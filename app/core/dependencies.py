"""What every domain's routes take from the app: its settings, its clock, its assistant,
its database and its live-events bus.

Routes ask for these aliases rather than reading `request.app.state`, so a test or a
second app built by `create_app(settings, clock=...)` reaches every route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.config import Settings

if TYPE_CHECKING:  # the seams' types only: core imports no domain at run time
    from app.assistant.base import Assistant
    from app.events.bus import EventBus


# async: a plain `def` dependency would run in the thread pool on every request.
async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_assistant(request: Request) -> Assistant:
    assistant: Assistant = request.app.state.assistant
    return assistant


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    """For work that opens its own short transactions (streams, sweeps), not the request's."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_event_bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.events
    return bus


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
AssistantDep = Annotated["Assistant", Depends(get_assistant)]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
EventBusDep = Annotated["EventBus", Depends(get_event_bus)]
