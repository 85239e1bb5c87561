"""Path hashes: a keyed hash chained along a conversation's path, one per message.

    path_hash(m) = HMAC-SHA256(key, path_hash(parent) || role || 0 || content)

(the parent's hash is empty for a first message, and system messages are left out of the
chain), so two messages have the same hash exactly when the paths from their roots hold
the same roles and contents. `POST /v1/chat/completions` looks up the hashes of the path a
client sends (`ix_chat_message_user_path_hash`) to find the longest one it already stores.

Keyed with a key derived from SECRET_KEY for this one use, so that with encryption on a
stored hash cannot confirm a guess at a conversation without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

PATH_HASH_CONTEXT = b"chatkeep path hash v1"


def path_hash_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), PATH_HASH_CONTEXT, hashlib.sha256).digest()


def hashed_content(content: str, tool_calls: Sequence[Mapping[str, Any]] | None = None) -> str:
    """What of a message the chain covers: its text and, for a reply that called tools,
    each call's function name and arguments (ids are the model's, not the content)."""
    if not tool_calls:
        return content
    calls = [
        [
            str(c.get("function", {}).get("name", "")),
            str(c.get("function", {}).get("arguments", "")),
        ]
        for c in tool_calls
    ]
    return content + "\x00" + json.dumps(calls, ensure_ascii=False, separators=(",", ":"))


def chain(key: bytes, parent: bytes | None, role: str, content: str) -> bytes:
    """The path hash of a message whose parent's path hash is `parent` (None: a root)."""
    mac = hmac.new(key, parent or b"", hashlib.sha256)
    mac.update(role.encode())
    mac.update(b"\x00")
    mac.update(content.encode("utf-8", "surrogatepass"))
    return mac.digest()
