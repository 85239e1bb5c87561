from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.assistant.base import RecordedReply, ReplyOutput, TextAssistant, TurnInput, Usage
from app.core.config import Settings


@dataclass
class MeteredAssistant(TextAssistant):
    """Answers every turn and reports `prompt` + `completion` tokens, as a model does."""

    name: str = "metered"
    model: str = "test-model"
    prompt: int = 60
    completion: int = 40

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        out.write(f"reply to {turn.message}")
        out.add_usage(Usage(self.prompt, self.completion))

    async def record(
        self, *, db: AsyncSession, turn: TurnInput, prepared: Any, outcome: Any, stopped: bool
    ) -> RecordedReply:
        return RecordedReply(metadata={"model": self.model})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"quota_tokens_per_day": 250})


@pytest.fixture
def metered(app) -> MeteredAssistant:
    assistant = MeteredAssistant()
    app.state.assistant = assistant
    return assistant


async def counts(sessionmaker) -> tuple[int, int, int]:
    """Conversations, messages and turns stored, everyone's."""
    async with sessionmaker() as s:
        row = (
            await s.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM chat_session), (SELECT count(*) FROM "
                    "chat_message), (SELECT count(*) FROM chat_turn)"
                )
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def make_superuser(sessionmaker, email: str) -> None:
    async with sessionmaker() as s:
        await s.execute(
            sa.text("UPDATE app_user SET is_superuser = true WHERE email = :email"),
            {"email": email},
        )
        await s.commit()
