"""The local model (ASSISTANT_BACKEND=local): SmolLM2 135M in its own llama.cpp process.

Measured through the app's own writer (`app.assistant.local_model.LocalWriter`): the child
process, its bounded queue and the streaming OpenAI-compatible client, as a chat turn uses
them, without HTTP or the database (the real_model section measures those).

- *Start*: from spawning the process to the model loaded and serving.
- *One user*: questions one after another: time to the first token, and tokens per second
  while the answer streams (completion tokens after the first, over the time from the first
  token to the last).
- *20 users at once*: twenty questions sent together, served LOCAL_MODEL_PARALLEL at a time
  and the rest in line: the time each waits for its first token (its wait in line
  included), the place in line each was first told, the wall time for all twenty, and the
  tokens per second of the model over the whole burst.

Every answer is capped at MAX_TOKENS tokens, so the figures compare across runs.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil  # type: ignore[import-untyped]

from app.assistant import local_model
from app.assistant.base import TurnInput, Usage
from app.assistant.intents import Intent, IntentKind
from app.assistant.local_model import LocalWriter
from app.core.config import Settings
from app.drafts.ledger import EMPTY_TURN_LEDGER
from bench.modes import Mode
from bench.pg import BenchServer
from bench.report import Report, Table, percentile

MAX_TOKENS = 64
QUESTIONS = (
    "What is the capital of France?",
    "How do rainbows form?",
    "What is your favourite colour?",
    "Why is the sky blue?",
    "What is photosynthesis?",
)


@dataclass
class Timed:
    """A ReplyOutput that notes when things happen."""

    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    last: float | None = None
    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    places: list[int | None] = field(default_factory=list)

    def write(self, text: str) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add_usage(self, usage: Usage) -> None:
        self.usage = usage

    def set_outcome(self, outcome: Any) -> None:
        pass

    def queued(self, position: int | None) -> None:
        self.places.append(position)

    def shielded(self) -> Any:  # pragma: no cover - never used by answers
        raise NotImplementedError

    @property
    def ttft(self) -> float:
        assert self.first is not None
        return self.first - self.started

    @property
    def tokens_per_second(self) -> float | None:
        if self.usage is None or self.first is None or self.last is None:
            return None
        spent = self.last - self.first
        return (self.usage.completion_tokens - 1) / spent if spent > 0 else None


def _turn(message: str) -> TurnInput:
    return TurnInput(
        user_id=uuid.uuid4(),
        session_id="bench",
        message_seq=1,
        history=(),
        message=message,
        context=None,
        now=datetime.now(UTC),
    )


async def _ask(writer: LocalWriter, message: str) -> Timed:
    out = Timed()
    await writer.answer(
        intent=Intent(IntentKind.QUESTION),
        turn=_turn(message),
        state=EMPTY_TURN_LEDGER.state,
        out=out,  # type: ignore[arg-type]
    )
    return out


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    if mode.name == "smoke":
        report.note("local model section skipped in this mode")
        return {}
    if not local_model.available():
        report.note("local model: not installed (make install); section skipped")
        return {}
    settings = Settings(assistant_backend="local", local_model_max_tokens=MAX_TOKENS)
    writer = LocalWriter.from_settings(settings)
    users = 20
    try:
        t0 = time.perf_counter()
        await writer.started()
        start_s = time.perf_counter() - t0
        await _ask(writer, "Hello!")  # warm-up
        singles = [await _ask(writer, q) for q in QUESTIONS]
        t0 = time.perf_counter()
        crowd = await asyncio.gather(*[_ask(writer, QUESTIONS[i % 5]) for i in range(users)])
        crowd_s = time.perf_counter() - t0
        pid = writer.process.pid
        rss_mib = psutil.Process(pid).memory_info().rss / 2**20 if pid else 0.0
    finally:
        await writer.aclose()

    single_rates = [r for r in (s.tokens_per_second for s in singles) if r]
    single_ttft = [s.ttft for s in singles]
    crowd_ttft = [c.ttft for c in crowd]
    crowd_tokens = sum(c.usage.completion_tokens for c in crowd if c.usage)
    first_places = [next((p for p in c.places if p), 0) for c in crowd]
    answered = sum(1 for c in crowd if c.text.strip())

    table = Table(
        f"Local model: {local_model.MODEL_NAME} (Q4_1) through llama.cpp in its own process, "
        f"{settings.local_model_threads} thread(s), {settings.local_model_parallel} replies "
        f"at once, answers capped at {MAX_TOKENS} tokens",
        ["measure", "value"],
    )
    table.add("model start (spawn to serving), s", f"{start_s:.2f}")
    table.add("model process memory after the burst (RSS), MiB", f"{rss_mib:.0f}")
    table.add(
        "one user: time to first token, median (min-max), s",
        f"{percentile(single_ttft, 50):.2f} ({min(single_ttft):.2f}-{max(single_ttft):.2f})",
    )
    table.add(
        "one user: tokens/s while streaming, median (min-max)",
        f"{percentile(single_rates, 50):.1f} ({min(single_rates):.1f}-{max(single_rates):.1f})"
        if single_rates
        else "—",
    )
    table.add(f"{users} users at once: answered", f"{answered} of {users}")
    table.add(f"{users} users at once: wall time for all, s", f"{crowd_s:.1f}")
    table.add(
        f"{users} users at once: time to first token, median / p90 / max, s",
        f"{percentile(crowd_ttft, 50):.2f} / {percentile(crowd_ttft, 90):.2f} / "
        f"{max(crowd_ttft):.2f}",
    )
    table.add(
        f"{users} users at once: told a place in line",
        f"{sum(1 for p in first_places if p)} of {users} (places 1 to {max(first_places)})",
    )
    table.add(
        f"{users} users at once: model tokens/s over the burst", f"{crowd_tokens / crowd_s:.1f}"
    )
    table.notes.append(
        f"1-min load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        "(shared machine: every figure is a wall-clock figure)"
    )
    report.show(table)
    return {
        "local_model": {
            "start_seconds": round(start_s, 2),
            "process_rss_mib": round(rss_mib),
            "single_ttft_seconds": [round(x, 3) for x in single_ttft],
            "single_tokens_per_second": [round(x, 1) for x in single_rates],
            "crowd_users": users,
            "crowd_answered": answered,
            "crowd_wall_seconds": round(crowd_s, 2),
            "crowd_ttft_seconds": [round(x, 3) for x in crowd_ttft],
            "crowd_tokens_per_second": round(crowd_tokens / crowd_s, 1),
            "crowd_first_places": first_places,
        }
    }
