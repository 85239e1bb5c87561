"""The app's live-events bus, for routes (`EventBusDep`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.dependencies import from_app_state
from app.events.bus import EventBus

EventBusDep = Annotated[EventBus, Depends(from_app_state("events"))]
