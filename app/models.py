"""Every domain's tables, gathered for Alembic and the test that compares models to migrations."""

from app.auth.models import User
from app.conversations.models import ChatMessage, ChatSession, SweepRun, SweeperState
from app.core.db import metadata

__all__ = ["ChatMessage", "ChatSession", "SweepRun", "SweeperState", "User", "metadata"]
