"""A message of a conversation as the assistant reads it: one step of the path from a new
message's parent up (what `service.pick_context` fits to the context budget)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HistoryMessage:
    seq: int
    role: str
    content: str
    image_url: str | None = None


# What a model reads before the summary of a long conversation's dropped start.
SUMMARY_PREFIX = "Summary of earlier messages: "
