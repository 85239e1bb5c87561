"""Every domain's tables, gathered for Alembic and the test that compares models to migrations."""

from app.auth.models import User
from app.conversations.models import ChatMessage, ChatSession, SweepRun, SweeperState
from app.core.db import metadata
from app.exports.models import ChatImport

__all__ = [
    "ChatImport",
    "ChatMessage",
    "ChatSession",
    "SweepRun",
    "SweeperState",
    "User",
    "metadata",
]
