"""What every domain's routes take from the app: its settings, its clock and its database.
The assistant and the live-events bus are their own packages' (`AssistantDep`, `EventBusDep`).

Routes ask for these aliases rather than reading `request.app.state`, so a test or a
second app built by `create_app(settings, clock=...)` reaches every route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.config import Settings


def from_app_state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that reads `request.app.state.<name>`."""

    # async: a plain `def` dependency would run in the thread pool on every request.
    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    dependency.__name__ = f"app_{name}"
    return dependency


SettingsDep = Annotated[Settings, Depends(from_app_state("settings"))]
ClockDep = Annotated[Clock, Depends(from_app_state("clock"))]
# For work that opens its own short transactions (streams, sweeps), not the request's.
SessionmakerDep = Annotated[
    async_sessionmaker[AsyncSession], Depends(from_app_state("sessionmaker"))
]
EngineDep = Annotated[AsyncEngine, Depends(from_app_state("engine"))]
