"""Small assistants for tests of the chat machinery (not of the drafting assistant)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from app.assistant.base import AssistantError, ReplyOutput, TextAssistant, TurnInput


@dataclass
class RecordingAssistant(TextAssistant):
    """Answers every turn with "reply to <message>" and keeps what it was given."""

    name: str = "recording"
    turns: list[TurnInput] = field(default_factory=list)
    fail: AssistantError | None = None

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        self.turns.append(turn)
        if self.fail:
            raise self.fail
        out.write(f"reply to {turn.message}")


@dataclass
class SlowAssistant(TextAssistant):
    """Writes `words` one by one, `delay` seconds apart; `release` lets it go on at once."""

    name: str = "slow"
    words: tuple[str, ...] = ("one ", "two ", "three ", "four ", "five")
    delay: float = 0.05
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        self.started.set()
        for word in self.words:
            out.write(word)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), self.delay)


class CollectingOutput:
    """A `ReplyOutput` that only keeps what was written (to run an assistant's steps by
    hand, as a crash between them would leave things)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.outcome: object = None
        self.usage: object = None

    def write(self, text: str) -> None:
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add_usage(self, usage: object) -> None:
        self.usage = usage

    def set_outcome(self, outcome: object) -> None:
        self.outcome = outcome

    @contextlib.contextmanager
    def shielded(self):  # type: ignore[no-untyped-def]
        yield
