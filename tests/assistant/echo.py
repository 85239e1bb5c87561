"""An assistant that echoes: honest, deterministic, and visibly history-aware.

Not a product backend (that is `builtin.DraftingAssistant`). The chat API's tests use it:
each reply shows what the server remembers of the conversation, which is what the session
API has to prove.
"""

from __future__ import annotations

from app.assistant.base import ReplyOutput, TextAssistant, TurnInput

PREVIEW_CHARS = 80


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class EchoAssistant(TextAssistant):
    name = "echo"

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        earlier_user = [m for m in turn.history if m.role == "user"]
        if not earlier_user:
            text = (
                f'You said: "{_preview(turn.message)}". This is the start of our conversation; '
                "I will remember it for the rest of this session."
            )
        else:
            text = (
                f'You said: "{_preview(turn.message)}". Earlier in this conversation you said '
                f'"{_preview(earlier_user[-1].content)}" ({len(turn.history)} earlier messages, '
                f'earliest in view: "{_preview(earlier_user[0].content)}").'
            )
        if turn.context:
            text += f' Context noted: "{_preview(turn.context)}".'
        out.write(text)
