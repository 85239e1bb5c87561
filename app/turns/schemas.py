from __future__ import annotations

from pydantic import Field

from app.core.schemas import ApiModel


class TurnStopOut(ApiModel):
    turn_id: str
    status: str = Field(description="generating (while it stops), done, stopped or failed")
    stop_requested: bool
