"""One conversation of an export, checked: Chatkeep's shape, strictly, with its budgets.

Other products' entries are turned into this shape first (`app.imports.formats`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from app.conversations.tags import normalize_tags
from app.core.errors import InvalidInputError
from app.core.text import grapheme_floor
from app.core.validation import PG_INT_MAX, SaneDatetime
from app.drafts.schemas import image_url
from app.exports.service import stored_image_id
from app.imports import formats

MAX_IMAGE_URL_CHARS = 2048
MAX_METADATA_BYTES = 64 * 1024
MAX_SOURCE_ID_CHARS = 200


def rejected(detail: str, code: str) -> InvalidInputError:
    return InvalidInputError(detail, code=code)


@dataclass(frozen=True)
class ImportFailure:
    """An entry of the file that was not imported, and why."""

    index: int
    source_id: str | None
    title: str | None
    code: str
    detail: str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class ImportedMessage(_Strict):
    seq: StrictInt = Field(ge=1, le=PG_INT_MAX)
    # Version 2: the message this one follows (absent in version 1: the one before).
    parent_seq: StrictInt | None = Field(default=None, alias="parentSeq", ge=1, le=PG_INT_MAX)
    role: Literal["user", "assistant", "system"]
    content: StrictStr
    image_url: StrictStr | None = Field(
        default=None, alias="imageUrl", max_length=MAX_IMAGE_URL_CHARS
    )
    created_at: SaneDatetime = Field(alias="createdAt")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ImportedConversation(_Strict):
    id: StrictStr = Field(min_length=1, max_length=MAX_SOURCE_ID_CHARS)
    title: StrictStr = Field(max_length=200)
    status: Literal["active", "archived", "trashed"] = "archived"
    created_at: SaneDatetime = Field(alias="createdAt")
    last_activity_at: SaneDatetime = Field(alias="lastActivityAt")
    archived_at: SaneDatetime | None = Field(default=None, alias="archivedAt")
    message_count: StrictInt = Field(alias="messageCount", ge=0, le=PG_INT_MAX)
    pinned: StrictBool = False
    tags: list[StrictStr] = Field(default_factory=list, max_length=100)
    imported_from: Literal["chatgpt", "claude", "openwebui", "chatkeep"] | None = Field(
        default=None, alias="importedFrom"
    )
    head_seq: StrictInt | None = Field(default=None, alias="headSeq", ge=1, le=PG_INT_MAX)
    messages: list[ImportedMessage]

    def text_bytes(self) -> int:
        """About how much this conversation puts into INSERT statements."""
        return len(self.title) + sum(len(m.content) + 256 for m in self.messages)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def check(item: Any, where: str, max_message_chars: int) -> ImportedConversation:
    try:
        conv = ImportedConversation.model_validate(item)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        loc = _location((where, *first["loc"]))
        raise rejected(f"{loc}: {first['msg']}", "invalid_export") from None
    for pos, message in enumerate(conv.messages):
        if len(message.content) > max_message_chars:
            raise rejected(
                f"{where}.messages.{pos}.content is {len(message.content)} characters long; "
                f"the limit is {max_message_chars} (MAX_MESSAGE_CHARS).",
                "message_too_long",
            )
        if message.seq != pos + 1:
            raise rejected(
                f"{where}.messages.{pos}.seq is {message.seq}; messages must be numbered "
                "1, 2, 3, ... in order.",
                "invalid_export",
            )
        if len(canonical(message.metadata)) > MAX_METADATA_BYTES:
            raise rejected(
                f"{where}.messages.{pos}.metadata is larger than {MAX_METADATA_BYTES} bytes.",
                "invalid_export",
            )
        # Only this server's image path, in its one spelling; whose image it is, is checked
        # when the rows are written.
        message.image_url = image_url(stored_image_id(message.image_url))
    try:
        conv.tags = normalize_tags(conv.tags)
    except InvalidInputError as exc:
        raise rejected(f"{where}.tags: {exc.detail}", "invalid_export") from None
    if conv.message_count != len(conv.messages):
        raise rejected(
            f"{where}.messageCount is {conv.message_count} but it holds "
            f"{len(conv.messages)} messages.",
            "invalid_export",
        )
    if conv.imported_from is None:
        conv.imported_from = "chatkeep"
    _settle_tree(conv, where)
    return conv


def _settle_tree(conv: ImportedConversation, where: str) -> None:
    """Parents and head: a file without `parentSeq` (version 1, other apps' chains) is a
    chain; a parent must be an older message; the head is the newest leaf under `headSeq`
    (the last message when absent)."""
    if not any("parent_seq" in m.model_fields_set for m in conv.messages):
        for m in conv.messages:
            m.parent_seq = m.seq - 1 if m.seq > 1 else None
    children: dict[int, int] = {}  # each message's newest child
    for pos, m in enumerate(conv.messages):
        if m.parent_seq is not None and m.parent_seq >= m.seq:
            raise rejected(
                f"{where}.messages.{pos}.parentSeq is {m.parent_seq}; a parent is an older "
                "message of the same conversation.",
                "invalid_export",
            )
        if m.parent_seq is not None:
            children[m.parent_seq] = m.seq
    head = conv.head_seq
    if head is None or head > len(conv.messages):
        head = len(conv.messages) or None
    while head is not None and head in children:
        head = children[head]
    conv.head_seq = head


def entry_label(source: formats.Source | None, item: Any) -> tuple[str | None, str | None]:
    """The entry's own id and title, as far as they can be read, for the answer."""
    keys: tuple[str, ...] = ("title",)
    if source is not None:
        ident = formats.source_id(source, item)
        keys = ("title", "name")
    else:
        ident = item.get("id") if isinstance(item, dict) else None
    title = next(
        (v for k in keys if isinstance(item, dict) and isinstance(v := item.get(k), str)), None
    )
    return (
        ident[:MAX_SOURCE_ID_CHARS] if isinstance(ident, str) else None,
        title[: grapheme_floor(title, 200)] if title is not None else None,
    )


def canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_hash(conv: ImportedConversation) -> str:
    """SHA-256 of what the conversation says, independent of formatting and key order."""
    doc: dict[str, Any] = {
        "title": conv.title,
        "createdAt": conv.created_at.isoformat(),
        "messages": [
            [m.seq, m.role, m.content, m.image_url, m.created_at.isoformat(), m.metadata]
            for m in conv.messages
        ],
    }
    if any(m.parent_seq != (m.seq - 1 or None) for m in conv.messages):
        # A tree (a chain hashes as it always did, so re-imports of older files match).
        doc["parents"] = [m.parent_seq for m in conv.messages]
    return hashlib.sha256(canonical(doc).encode()).hexdigest()
