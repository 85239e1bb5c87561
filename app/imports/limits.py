"""The budgets of one import, read from Settings once per request."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.config import Settings


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    max_uncompressed_bytes: int
    max_ratio: int
    max_conversations: int
    max_messages: int
    max_message_chars: int
    # One conversation as parsed: its text plus a fixed cost per JSON value.
    max_conversation_bytes: int = 64 * 1024 * 1024
    # One INSERT statement's rows: at most this much text (and at most INSERT_BATCH rows).
    batch_bytes: int = 4 * 1024 * 1024
    # Over this size (and every ZIP) an import waits for the process's one large slot.
    large_bytes: int = 1024 * 1024
    queue_length: int = 4
    queue_wait_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        return cls(
            max_bytes=settings.max_import_bytes,
            max_uncompressed_bytes=settings.max_import_uncompressed_bytes,
            max_ratio=settings.max_import_compression_ratio,
            max_conversations=settings.max_import_conversations,
            max_messages=settings.max_import_messages,
            max_message_chars=settings.max_message_chars,
            max_conversation_bytes=settings.max_import_conversation_bytes,
            batch_bytes=settings.import_batch_bytes,
            large_bytes=settings.import_large_bytes,
            queue_length=settings.import_queue_length,
            queue_wait_seconds=settings.import_queue_wait_seconds,
        )
