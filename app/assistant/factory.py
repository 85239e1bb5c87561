from __future__ import annotations

from app.assistant.base import Assistant
from app.assistant.echo import EchoAssistant
from app.core.config import Settings


def build_assistant(settings: Settings) -> Assistant:
    """The assistant chosen by ASSISTANT_BACKEND."""
    return EchoAssistant()
