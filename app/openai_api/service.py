"""`POST /v1/chat/completions` as a chat turn: where the request's messages go in the key
owner's history, then the same turn as `POST /api/chat` (`app.turns`).

Where they go:
- `metadata.chatkeep_session_id`: after that conversation's head, no matching.
- Otherwise the request's messages (system prompts aside) are hashed along their path
  (`app.conversations.paths`) and the longest stored path they begin with is found by
  its hashes. The messages past it are added under it (a new branch when the stored path
  goes on differently) and the last one opens the turn. A request stored whole (sent
  again) gets a new reply to its last message, beside the one it had.
- No match: a new conversation, titled from its first user message and marked with the
  key's name; the system prompt is its first message, the request's earlier messages
  follow.

A tool result is stored as a message of the client's side (`user`, with `apiRole: tool`
and `toolCallId` in its metadata); a reply's tool calls are in its metadata
(`toolCalls`). The path hashes use the roles as sent, so such a path matches when resent.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.conversations import paths
from app.conversations.ids import is_well_formed, new_session_id
from app.conversations.service import title_from_message, validate_user_message
from app.core.db import commit
from app.core.errors import ConflictError, InvalidInputError, NotFoundError
from app.openai_api.backends import V1Model
from app.openai_api.repository import NewMessage, OpenApiRepository
from app.openai_api.schemas import ChatCompletionRequest, MessageIn
from app.turns import service as turns
from app.turns.admission import OpenSlot
from app.turns.dependencies import TurnServices
from app.turns.start import fingerprint, start_request

SYSTEM_ROLES = ("system", "developer")


@dataclass(frozen=True)
class ApiCaller:
    user_id: uuid.UUID
    key_name: str


@dataclass(frozen=True)
class _Message:
    wire_role: str  # as the client sent it: user, assistant or tool
    content: str
    meta: dict[str, Any]
    tool_calls: list[dict[str, Any]] | None

    @property
    def stored_role(self) -> str:
        return "assistant" if self.wire_role == "assistant" else "user"

    def hashed(self) -> str:
        return paths.hashed_content(self.content, self.tool_calls)


def _invalid(detail: str, code: str = "invalid_request") -> InvalidInputError:
    return InvalidInputError(detail, code=code)


def _message(m: MessageIn, *, max_chars: int) -> _Message:
    if m.has_other_parts():
        raise _invalid(
            "Only text content is supported (no images, audio or files).", "unsupported_content"
        )
    text = m.text()
    if len(text) > max_chars:
        raise _invalid(
            f"A message is {len(text)} characters long; the limit is {max_chars}.",
            "message_too_long",
        )
    meta: dict[str, Any] = {}
    calls = None
    if m.role == "tool":
        meta = {"apiRole": "tool", "toolCallId": m.tool_call_id or ""}
    elif m.role == "assistant" and m.tool_calls:
        calls = [c.model_dump(mode="json", exclude_none=True) for c in m.tool_calls]
        meta = {"toolCalls": calls}
    return _Message(wire_role=m.role, content=text, meta=meta, tool_calls=calls)


def split_messages(
    body: ChatCompletionRequest, *, max_chars: int
) -> tuple[str | None, list[_Message]]:
    """The system prompt (all system and developer messages, joined) and the rest."""
    system = [m.text() for m in body.messages if m.role in SYSTEM_ROLES]
    rest = [_message(m, max_chars=max_chars) for m in body.messages if m.role not in SYSTEM_ROLES]
    if not rest:
        raise _invalid("`messages` holds no user message.", "no_user_message")
    if rest[-1].wire_role not in ("user", "tool"):
        raise _invalid(
            "The last message must be the user's (or a tool's result).", "no_user_message"
        )
    validate_user_message(rest[-1].content, max_chars=max_chars)
    prompt = "\n\n".join(t for t in system if t.strip()) or None
    return prompt, rest


def chain(key: bytes, messages: list[_Message], parent: bytes | None = None) -> list[bytes]:
    hashes: list[bytes] = []
    for m in messages:
        parent = paths.chain(key, parent, m.wire_role, m.hashed())
        hashes.append(parent)
    return hashes


def _new(messages: list[_Message], hashes: list[bytes]) -> list[NewMessage]:
    return [
        NewMessage(role=m.stored_role, content=m.content, meta=m.meta, path_hash=h)
        for m, h in zip(messages, hashes, strict=True)
    ]


async def _placed(
    *,
    db: AsyncSession,
    services: TurnServices,
    caller: ApiCaller,
    body: ChatCompletionRequest,
    key: bytes,
    base: turns.TurnRequest,
) -> turns.TurnRequest:
    """`base` with where its message goes: the conversation, the parent (or the stored
    message it answers again) and its path hash. Writes the request's messages that come
    before it and are not stored yet, in a transaction of their own."""
    settings = services.settings
    now = services.clock.now()
    active_since = now - timedelta(seconds=settings.session_ttl_seconds)
    repo = OpenApiRepository(db, caller.user_id)
    system, messages = split_messages(body, max_chars=settings.max_message_chars)
    last = messages[-1]

    session_id = body.session_id()
    if session_id is not None:
        head = await repo.session_head(session_id) if is_well_formed(session_id) else None
        if head is None:
            raise NotFoundError("No conversation with this id.", code="session_not_found")
        if head.status != "active" or head.active_since < active_since:
            raise ConflictError(
                "This conversation is archived or has expired; restore it to continue it.",
                code="session_not_active",
            )
        hashed = head.head_seq is None or head.path_hash is not None
        return dataclasses.replace(
            base,
            session_id=session_id,
            message=last.content,
            message_meta=last.meta,
            path_hash=chain(key, [last], head.path_hash)[-1] if hashed else None,
            path_key=key if hashed else None,
        )

    hashes = chain(key, messages)
    match = await repo.longest_match(hashes, active_since=active_since)
    placed = dataclasses.replace(
        base, message=last.content, message_meta=last.meta, path_hash=hashes[-1], path_key=key
    )
    if match is not None and match.position == len(messages):
        # Stored whole: a new reply to its last message.
        return dataclasses.replace(
            placed, session_id=match.session_id, message="", regenerate_seq=match.seq
        )
    if match is not None:
        between = messages[match.position : -1]
        parent = match.seq
        if between:
            parent = await repo.append(
                services.bus,
                session_id=match.session_id,
                parent_seq=match.seq,
                messages=_new(between, hashes[match.position : -1]),
                now=now,
            )
            await commit(db, services.bus)
        return dataclasses.replace(placed, session_id=match.session_id, parent_seq=parent)
    if system is None and len(messages) == 1:
        return dataclasses.replace(placed, session_id=None, api_client=caller.key_name)
    first_user = next((m.content for m in messages if m.wire_role == "user"), last.content)
    earlier = _new(messages[:-1], hashes[:-1])
    if system is not None:
        earlier.insert(0, NewMessage(role="system", content=system, meta={}, path_hash=None))
    new_id = new_session_id(now)
    parent = await repo.append(
        services.bus,
        session_id=new_id,
        parent_seq=None,
        messages=earlier,
        now=now,
        title=title_from_message(first_user),
        api_client=caller.key_name,
    )
    await commit(db, services.bus)
    return dataclasses.replace(placed, session_id=new_id, parent_seq=parent)


async def start_completion(
    *,
    db: AsyncSession,
    services: TurnServices,
    slot: OpenSlot,
    caller: ApiCaller,
    body: ChatCompletionRequest,
    model: V1Model,
    idempotency_key: str | None,
) -> uuid.UUID:
    """The turn that answers this request; no connection is held on return."""
    idem = turns.validate_idempotency_key(idempotency_key)
    hashes = fingerprint(services, idem, {"v1": body.model_dump(mode="json")})
    base = turns.TurnRequest(
        user_id=caller.user_id,
        session_id=None,
        message="",
        context=None,
        idempotency_key=idem,
        request_hash=hashes[0],
        legacy_request_hash=hashes[1],
        model=model.chosen,
    )
    key = paths.path_hash_key(services.settings.resolved_secret_key())
    request = await _placed(db=db, services=services, caller=caller, body=body, key=key, base=base)
    answering = dataclasses.replace(services, assistant=model.assistant_for(body.model_body()))
    return await start_request(db=db, services=answering, slot=slot, request=request)
