"""Other chat products' exports, turned into Chatkeep's conversation shape before checking.

Each converter takes one entry of the product's export (already parsed JSON) and returns a
dict shaped like a `chatkeep.conversation` object (camelCase keys, `messages` numbered from
1), which the importer then checks exactly like its own files. An entry that cannot be
used (no messages, no mapping, no times) raises `BrokenEntry`; the importer skips it and
lists it in its answer.

Messages form a tree in ChatGPT and Open WebUI (and in Claude when
`parent_message_uuid` is present), and they are imported whole: every node with a user
or assistant message becomes a message with its parent (`parentSeq`), nodes without one
(the root, system, context or hidden nodes) are skipped and their children re-parented to
the nearest kept ancestor, and the head is the current node (or its nearest kept
ancestor).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from app.conversations.tags import TAGS_PER_CONVERSATION, normalize_tag
from app.core.errors import InvalidInputError
from app.core.text import grapheme_floor

Source = Literal["chatgpt", "claude", "openwebui"]
TITLE_MAX_CHARS = 200
MAX_MODEL_NAME_CHARS = 100
UNTITLED_TITLE_CHARS = 80
# Open WebUI keeps a reasoning model's thoughts inside the answer, in this element.
_OPENWEBUI_REASONING = re.compile(
    r"<details\b[^>]*\btype=\"reasoning\"[^>]*>.*?</details>\s*", re.DOTALL | re.IGNORECASE
)
# Before any time: a node without one sorts first among its siblings.
_NO_TIME = datetime.min.replace(tzinfo=UTC)
# Claude marks the first message's parent with the nil-like UUID.
_CLAUDE_ROOT = "00000000-0000-4000-8000-000000000000"


class BrokenEntry(Exception):
    """This entry of the file cannot be imported; the rest of the file can."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def detect(entries: list[Any]) -> Source | None:
    """Which product a list of conversations comes from, by the keys of its entries."""
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if "mapping" in entry or "current_node" in entry:
            return "chatgpt"
        if "chat_messages" in entry:
            return "claude"
        if isinstance(entry.get("chat"), dict):
            return "openwebui"
    return None


def message_total(source: Source, entries: Iterable[Any]) -> int:
    """How many messages the entries hold at most (every node of every tree), so the
    import limit is checked before any conversion work."""
    total = 0
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if source == "chatgpt":
            nodes = entry.get("mapping")
        elif source == "claude":
            nodes = entry.get("chat_messages")
        else:
            chat = entry.get("chat")
            history = chat.get("history") if isinstance(chat, dict) else None
            nodes = history.get("messages") if isinstance(history, dict) else None
            if nodes is None and isinstance(chat, dict):
                nodes = chat.get("messages")
        if isinstance(nodes, dict | list):
            total += len(nodes)
    return total


def converter(source: Source) -> Callable[[Any], dict[str, Any]]:
    return {"chatgpt": from_chatgpt, "claude": from_claude, "openwebui": from_openwebui}[source]


def source_id(source: Source, entry: Any) -> str | None:
    """The entry's id in its product, for the answer's list of skipped entries."""
    if not isinstance(entry, dict):
        return None
    keys = {"chatgpt": ("conversation_id", "id"), "claude": ("uuid",), "openwebui": ("id",)}
    for key in keys[source]:
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# ----------------------------------------------------------------------------- helpers


def _epoch(value: Any) -> datetime | None:
    """Seconds since 1970 (milliseconds or nanoseconds are recognised by their size)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds > 1e17:
        seconds /= 1e9
    elif seconds > 1e11:
        seconds /= 1e3
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value: Any) -> datetime | None:
    """An ISO 8601 time; one without a zone is taken as UTC (as these products write)."""
    if not isinstance(value, str):
        return _epoch(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _title(raw: Any, messages: list[dict[str, Any]]) -> str:
    title = " ".join(raw.split()) if isinstance(raw, str) else ""
    if not title:
        first = next((m["content"] for m in messages if m["role"] == "user"), "")
        title = " ".join(first.split())
        title = title[: grapheme_floor(title, UNTITLED_TITLE_CHARS)]
    return title[: grapheme_floor(title, TITLE_MAX_CHARS)]


# One node of another product's tree: its parent's key, and its message (None: a node
# with nothing to import, whose children go to its nearest kept ancestor).
# A message as kept: (role, text, time, the model that wrote it where the export says).
_Message = tuple[str, str, datetime | None, str | None]
_Node = tuple[str | None, _Message | None]


@dataclass
class _Tree:
    """Messages in an order where every parent comes before its children, with each
    one's parent (an index into `messages`) and the head's index."""

    messages: list[_Message]
    parents: list[int | None]
    head: int | None


def _tree(
    nodes: dict[str, _Node],
    head_key: str | None,
    *,
    sort_key: Callable[[str], Any],
    merge_answers: bool = False,
) -> _Tree:
    """Walks the tree from its roots (children in `sort_key` order, no recursion, a cycle
    or an unknown parent makes a root), keeping the nodes that hold a message. With
    `merge_answers`, an assistant node that is the only child of the path below an
    assistant message is folded into it (one answer written as several nodes)."""
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    for key, (parent, _) in nodes.items():
        if parent is not None and parent in nodes and parent != key:
            children.setdefault(parent, []).append(key)
        else:
            roots.append(key)
    out = _Tree([], [], None)
    index_of: dict[str, int | None] = {}
    has_child: set[int] = set()
    stack: list[tuple[str, int | None, bool]] = [
        (k, None, False) for k in sorted(roots, key=sort_key, reverse=True)
    ]
    seen: set[str] = set()
    while stack:
        key, above, only_child = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        message = nodes[key][1]
        at = above
        if message is not None:
            role, text, when, model = message
            if (
                merge_answers
                and only_child
                and above is not None
                and role == "assistant"
                and out.messages[above][0] == "assistant"
                and above not in has_child
            ):
                prev_role, prev_text, prev_at, prev_model = out.messages[above]
                out.messages[above] = (
                    prev_role,
                    f"{prev_text}\n\n{text}",
                    prev_at or when,
                    prev_model or model,
                )
            else:
                out.messages.append(message)
                out.parents.append(above)
                if above is not None:
                    has_child.add(above)
                at = len(out.messages) - 1
        index_of[key] = at
        below = sorted(children.get(key, []), key=sort_key, reverse=True)
        stack.extend((child, at, len(below) == 1) for child in below)
    out.head = index_of.get(head_key) if head_key is not None else None
    if out.head is None and out.messages:
        out.head = len(out.messages) - 1
    return out


def _model_name(holder: Any, key: str) -> str | None:
    """A model's name from an export (`model_slug` in ChatGPT's, `model` in Open WebUI's),
    when it is a short string."""
    value = holder.get(key) if isinstance(holder, dict) else None
    if isinstance(value, str) and value.strip() and len(value) <= MAX_MODEL_NAME_CHARS:
        return value.strip()
    return None


def _conversation(
    *,
    source: Source,
    raw_id: Any,
    title: Any,
    created: datetime | None,
    updated: datetime | None,
    messages: list[_Message],
    pinned: bool = False,
    tags: list[str] | None = None,
    tree: _Tree | None = None,
) -> dict[str, Any]:
    """The Chatkeep conversation object; with `tree`, its messages (already without empty
    ones) carry their parents and the conversation its head."""
    if not isinstance(raw_id, str) or not raw_id:
        raise BrokenEntry("it has no id")
    if tree is not None:
        messages = tree.messages
    kept = [m for m in messages if m[1].strip()]
    if not kept:
        raise BrokenEntry("it has no messages")
    times = [at for _, _, at, _ in kept if at is not None]
    created = created or (min(times) if times else None) or updated
    if created is None:
        raise BrokenEntry("it has no times")
    out: list[dict[str, Any]] = []
    last = created
    for role, text, at, model in kept:
        last = at or last
        # A reply keeps the name of the model that wrote it, as the export gives it.
        meta = {"model": model} if model and role == "assistant" else {}
        out.append({"role": role, "content": text, "createdAt": last, "metadata": meta})
    for seq, m in enumerate(out, start=1):
        m.update(seq=seq, imageUrl=None)
    extra: dict[str, Any] = {}
    if tree is not None:
        for m, parent in zip(out, tree.parents, strict=True):
            m["parentSeq"] = parent + 1 if parent is not None else None
        extra["headSeq"] = tree.head + 1 if tree.head is not None else None
    return {
        **extra,
        "id": f"{source}:{raw_id}",
        "title": _title(title, out),
        "createdAt": created,
        "lastActivityAt": max([updated or created, last, created]),
        "messageCount": len(out),
        "pinned": pinned,
        "tags": tags or [],
        "importedFrom": source,
        "messages": out,
    }


# ------------------------------------------------------------------------------ ChatGPT

_CHATGPT_SKIPPED = {
    "thoughts",
    "reasoning_recap",
    "user_editable_context",
    "model_editable_context",
}


def _chatgpt_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if not isinstance(content, dict):
        return ""
    kind = content.get("content_type")
    if kind in _CHATGPT_SKIPPED:
        return ""
    if kind == "code":
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            return ""
        language = content.get("language")
        fence = language if isinstance(language, str) and language != "unknown" else ""
        return f"```{fence}\n{text.rstrip()}\n```"
    if kind == "execution_output":
        text = content.get("text")
        return f"```\n{text.rstrip()}\n```" if isinstance(text, str) and text.strip() else ""
    parts = content.get("parts")
    if isinstance(parts, list):
        pieces = [p if isinstance(p, str) else p.get("text") for p in parts if p]
        return "\n".join(p for p in pieces if isinstance(p, str) and p)
    text = content.get("text")
    return text if isinstance(text, str) else ""


def from_chatgpt(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise BrokenEntry("it is not a JSON object")
    mapping = entry.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise BrokenEntry("it has no mapping")
    nodes = {k: v for k, v in mapping.items() if isinstance(v, dict)}

    def parent(node: str) -> str | None:
        value = nodes[node].get("parent")
        return value if isinstance(value, str) else None

    leaf = entry.get("current_node")
    if not isinstance(leaf, str) or leaf not in nodes:
        # No current node: the newest leaf is the branch the user saw last.
        leaves = [k for k, v in nodes.items() if not v.get("children")]
        leaf = max(leaves, key=lambda k: _chatgpt_when(nodes[k])) if leaves else None
    tree = _tree(
        {k: (parent(k), _chatgpt_message(v)) for k, v in nodes.items()},
        leaf,
        sort_key=lambda k: _chatgpt_when(nodes[k]),
        merge_answers=True,
    )
    return _conversation(
        source="chatgpt",
        raw_id=entry.get("conversation_id") or entry.get("id"),
        title=entry.get("title"),
        created=_epoch(entry.get("create_time")),
        updated=_epoch(entry.get("update_time")),
        messages=[],
        tree=tree,
    )


def _chatgpt_when(node: dict[str, Any]) -> float:
    message = node.get("message")
    at = _epoch(message.get("create_time")) if isinstance(message, dict) else None
    return at.timestamp() if at else 0.0


def _chatgpt_message(node: dict[str, Any]) -> _Message | None:
    """A node's message as (role, text, time), or None for a node with nothing to keep."""
    message = node.get("message")
    if not isinstance(message, dict):
        return None
    meta = message.get("metadata")
    if isinstance(meta, dict) and meta.get("is_visually_hidden_from_conversation"):
        return None
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    if role == "tool":  # code output and tool results belong to the answer
        role = "assistant"
    if role not in ("user", "assistant", "system"):
        return None
    text = _chatgpt_text(message)
    if not text.strip():
        return None
    return role, text, _epoch(message.get("create_time")), _model_name(meta, "model_slug")


# ------------------------------------------------------------------------------- Claude


def _claude_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        texts = [
            block.get("text")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        ]
        return "\n\n".join(t for t in texts if isinstance(t, str) and t)
    text = message.get("text")
    return text if isinstance(text, str) else ""


def from_claude(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise BrokenEntry("it is not a JSON object")
    raw = entry.get("chat_messages")
    if not isinstance(raw, list) or not raw:
        raise BrokenEntry("it has no messages")
    listed = [m for m in raw if isinstance(m, dict)]
    roles = {"human": "user", "assistant": "assistant"}
    by_id = {m["uuid"]: m for m in listed if isinstance(m.get("uuid"), str)}
    tree: _Tree | None = None
    messages: list[_Message] = []
    if any(isinstance(m.get("parent_message_uuid"), str) for m in listed):
        # A tree, imported whole; the last message of the array that has no replies ends
        # the branch the user saw last (the head).
        parents = {p for m in listed if isinstance(p := m.get("parent_message_uuid"), str)}
        leaves = [m for m in listed if m.get("uuid") not in parents]
        leaf = leaves[-1].get("uuid") if leaves else None

        def parent(m: dict[str, Any]) -> str | None:
            value = m.get("parent_message_uuid")
            return value if isinstance(value, str) and value != _CLAUDE_ROOT else None

        def kept(m: dict[str, Any]) -> _Message | None:
            sender, text = m.get("sender"), _claude_text(m)
            if not isinstance(sender, str) or sender not in roles or not text.strip():
                return None
            return roles[sender], text, _iso(m.get("created_at")), _model_name(m, "model")

        order = {k: i for i, k in enumerate(by_id)}
        tree = _tree(
            {k: (parent(m), kept(m)) for k, m in by_id.items()},
            leaf if isinstance(leaf, str) else None,
            sort_key=order.__getitem__,
        )
    else:
        messages = [
            (roles[sender], _claude_text(m), _iso(m.get("created_at")), _model_name(m, "model"))
            for m in listed
            if isinstance(sender := m.get("sender"), str) and sender in roles
        ]
    return _conversation(
        source="claude",
        raw_id=entry.get("uuid"),
        title=entry.get("name"),
        created=_iso(entry.get("created_at")),
        updated=_iso(entry.get("updated_at")),
        messages=messages,
        tree=tree,
    )


# ---------------------------------------------------------------------------- Open WebUI


def _openwebui_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        content = "\n\n".join(t for t in texts if isinstance(t, str))
    if not isinstance(content, str):
        return ""
    return _OPENWEBUI_REASONING.sub("", content).strip()


def _openwebui_tags(meta: Any) -> list[str]:
    raw = meta.get("tags") if isinstance(meta, dict) else None
    tags: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str):
            continue
        try:
            tag = normalize_tag(name)
        except InvalidInputError:
            continue  # a tag Chatkeep cannot store is left out, not the conversation
        if tag not in tags and len(tags) < TAGS_PER_CONVERSATION:
            tags.append(tag)
    return tags


def from_openwebui(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("chat"), dict):
        raise BrokenEntry("it has no chat")
    chat = entry["chat"]
    history = chat.get("history")
    nodes = history.get("messages") if isinstance(history, dict) else None
    tree: _Tree | None = None
    chain: list[dict[str, Any]] = []
    if isinstance(nodes, dict) and nodes:
        found = {k: v for k, v in nodes.items() if isinstance(v, dict)}
        leaf = history.get("currentId") if isinstance(history, dict) else None

        def kept(m: dict[str, Any]) -> _Message | None:
            role, text = m.get("role"), _openwebui_text(m)
            if role not in ("user", "assistant", "system") or not text.strip():
                return None
            return role, text, _epoch(m.get("timestamp")), _model_name(m, "model")

        def parent(m: dict[str, Any]) -> str | None:
            value = m.get("parentId")
            return value if isinstance(value, str) else None

        order = {k: i for i, k in enumerate(found)}
        tree = _tree(
            {k: (parent(v), kept(v)) for k, v in found.items()},
            leaf if isinstance(leaf, str) else None,
            sort_key=lambda k: (_epoch(found[k].get("timestamp")) or _NO_TIME, order[k]),
        )
    elif isinstance(chat.get("messages"), list):
        chain = [m for m in chat["messages"] if isinstance(m, dict)]
    else:
        raise BrokenEntry("it has no messages")
    messages = [
        (role, _openwebui_text(m), _epoch(m.get("timestamp")), _model_name(m, "model"))
        for m in chain
        if (role := m.get("role")) in ("user", "assistant", "system")
    ]
    return _conversation(
        source="openwebui",
        raw_id=entry.get("id"),
        title=entry.get("title") or chat.get("title"),
        created=_epoch(entry.get("created_at")),
        updated=_epoch(entry.get("updated_at")),
        messages=messages,
        pinned=entry.get("pinned") is True,
        tags=_openwebui_tags(entry.get("meta")),
        tree=tree,
    )
