"""A writer backed by any OpenAI-compatible chat-completions API (OpenAI, Azure OpenAI,
vLLM, Ollama, llama.cpp server, ...), through the official `openai` SDK.

Every call streams (`stream: true`), so the reply reaches the user as the model writes
it. The SDK brings the timeouts and the retries (429 after `Retry-After`, 5xx, connection
failures); one client per app shares its connection pool.

With `LLM_INTENTS=model` the model also decides what the user means, through tool calls
(create, regenerate, publish, cancel), so requests work in any language. What happens to
drafts is still decided by the ledger in `DraftingAssistant`: a model can ask to publish,
but it can never claim to have posted something.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
import openai
from openai import AsyncOpenAI

from app.assistant.base import (
    AssistantError,
    DraftRequest,
    ReplyOutput,
    TurnInput,
    Usage,
    WrittenDraft,
)
from app.assistant.builtin import hashtags_in
from app.assistant.intents import Intent, IntentKind
from app.assistant.platforms import (
    PLATFORM_RULES,
    PLATFORMS,
    canonical_platform,
    display_name,
    measure,
)
from app.assistant.replies import describe_capabilities
from app.conversations.context import SUMMARY_PREFIX
from app.core.config import Settings
from app.core.text import ELLIPSIS, grapheme_floor, shorten
from app.drafts.ledger import LedgerState

logger = logging.getLogger("app.assistant.openai")

MAX_PROMPT_FIELD_CHARS = 2000
MAX_ERROR_DETAIL_CHARS = 200
# Measured units kept back while a post streams: the end may still be cut to fit.
STREAM_LIMIT_MARGIN = 24
# Characters kept back at the end while streaming: a closing quote or fence may follow.
STREAM_HOLDBACK_CHARS = 8

BASE_PROMPT = """You are Chatkeep's assistant for writing social-media posts.
You write drafts; the user confirms them. You never publish anything yourself and never \
claim that something was posted: Chatkeep publishes a draft only when the user confirms, \
and tells the user so itself. To get a draft, the user asks for a post, e.g. \
"Create a Facebook post about Diwali with image".

What Chatkeep can do:
{capabilities}"""

DECIDE_TASK = """Your task now: decide what the user's last message asks for, in whatever \
language it is written.
- A new post (with a topic): call create_post.
- Another version of the waiting draft or of the previous post: call regenerate_post.
- Posting / publishing the waiting draft (e.g. "yes", "post it", "oui", "हाँ"): call \
publish_draft.
- Discarding the waiting draft: call cancel_draft.
- Anything else (a question, small talk): answer briefly in the user's language, without \
calling a tool. If a draft is waiting and the user's answer is ambiguous, ask whether to \
post, regenerate or cancel it."""

_PLATFORM_SCHEMA = {"type": "string", "enum": list(PLATFORMS)}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "create_post",
            "description": "Draft a new social-media post.",
            "parameters": {
                "type": "object",
                "properties": {
                    "platform": _PLATFORM_SCHEMA,
                    "topic": {"type": "string", "description": "What the post is about"},
                    "with_image": {"type": "boolean"},
                },
                "required": ["topic"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "regenerate_post",
            "description": "Write a new version of the waiting draft or of the previous post.",
            "parameters": {
                "type": "object",
                "properties": {"platform": _PLATFORM_SCHEMA, "with_image": {"type": "boolean"}},
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "publish_draft",
            "description": "The user confirms: publish the draft that is waiting.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel_draft",
            "description": "The user discards the draft that is waiting.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


def _clip(text: str | None, limit: int = MAX_PROMPT_FIELD_CHARS) -> str:
    return shorten((text or "").strip(), limit, at_word=False, strip="")


def ledger_summary(state: LedgerState) -> str:
    """The draft ledger's state, as the model is told it."""
    lines = ["Draft ledger of this conversation:"]
    if state.pending is not None:
        p = state.pending
        lines.append(
            f"- A draft is waiting for the user's answer (post / regenerate / cancel): "
            f"{display_name(p.platform)} post about {json.dumps(p.topic)}, "
            f"version {p.current_version}."
        )
    else:
        lines.append("- No draft is waiting for an answer.")
    if state.latest is not None:
        d = state.latest
        request = {
            "platform": d.platform,
            "topic": d.topic,
            "context": _clip(d.context) or None,
            "withImage": d.with_image,
            "requestedInMessage": d.request_message_seq,
        }
        lines.append(
            f'- The previous post (what "regenerate the previous post" refers to) is '
            f"{d.status}, version {d.current_version}; its original request: "
            f"{json.dumps(request, ensure_ascii=False)}."
        )
        if state.latest_version is not None:
            latest_text = json.dumps(_clip(state.latest_version.text), ensure_ascii=False)
            lines.append(f"- Its latest text: {latest_text}")
    else:
        lines.append("- No post has been drafted in this conversation yet.")
    return "\n".join(lines)


def _truncate(platform: str, text: str, limit: int, *, keep: int = 0) -> str:
    """Fit `text` into `limit` (as the platform measures), never cutting its first `keep`
    characters, which the user has already seen."""
    if measure(platform, text) <= limit:
        return text
    cut = text
    while len(cut) > keep and measure(platform, cut + ELLIPSIS) > limit:
        cut = cut[: max(keep, len(cut) - max(1, (measure(platform, cut) - limit) // 2))]
    end = grapheme_floor(text, len(cut))  # never end inside a cluster (an emoji sequence)
    cut = cut[:end] if end >= keep else cut
    cut = cut.rstrip() if len(cut.rstrip()) >= keep else cut
    space = cut.rfind(" ")
    if space > max(len(cut) // 2, keep):
        cut = cut[:space]
    trimmed = cut.rstrip(" ,;:-")
    return (trimmed if len(trimmed) >= keep else cut) + ELLIPSIS


class PostStreamer:
    """Streams a model's post text into the reply: cleaned, and within the platform's limit.

    The opening of a code fence or a quote is dropped as it arrives; the last few
    characters are held back until the end, where a closing fence or quote is dropped and
    an over-long post is cut. What was already streamed is never taken back, so the
    deltas always add up to the stored reply.
    """

    def __init__(self, out: ReplyOutput, *, platform: str, limit: int) -> None:
        self.out = out
        self.platform = platform
        self.limit = limit
        self.raw = ""
        self.head: int | None = None  # characters of `raw` dropped at the start
        self.closings: list[str] = []  # a fence and/or quote that may end the text
        self.sent = 0  # characters of the body already written to `out`

    def _decide_head(self) -> bool:
        """Find where the post starts: past a fence line and/or an opening quote. False
        while the text so far is too short to tell."""
        pos = len(self.raw) - len(self.raw.lstrip())
        closings: list[str] = []
        rest = self.raw[pos:]
        if rest.startswith("```"):
            if "\n" not in rest:
                if len(rest) <= 40:
                    return False
            else:
                first = rest.split("\n", 1)[0]
                if " " not in first.strip():
                    pos += len(first) + 1
                    closings.append("```")
                    rest = self.raw[pos:]
                    pos += len(rest) - len(rest.lstrip())
                    rest = rest.lstrip()
        if not rest:
            return False
        if rest[0] in "\"'":
            pos += 1
            closings.append(rest[0])
        self.head, self.closings = pos, closings
        return True

    def _body(self) -> str:
        assert self.head is not None
        return self.raw[self.head :].lstrip()

    def feed(self, piece: str) -> None:
        self.raw += piece
        if self.head is None and not self._decide_head():
            return
        body = self._body().rstrip()
        safe = body[: max(0, len(body) - STREAM_HOLDBACK_CHARS)]
        budget = self.limit - STREAM_LIMIT_MARGIN
        if len(safe) > self.sent and measure(self.platform, safe) > budget:
            # Past the safe budget: stream no further, the end may still be cut.
            while len(safe) > self.sent and measure(self.platform, safe) > budget:
                safe = safe[: len(safe) - max(1, (measure(self.platform, safe) - budget) // 2)]
        if len(safe) > self.sent:
            self.out.write(safe[self.sent :])
            self.sent = len(safe)

    def finish(self) -> str:
        if self.head is None:
            self.head = len(self.raw) - len(self.raw.lstrip())
        body = self._body().rstrip()
        for closing in self.closings:  # outermost first: the fence, then the quote
            if body.endswith(closing) and len(body) - len(closing) >= self.sent:
                body = body[: -len(closing)].rstrip()
        text = _truncate(self.platform, body, self.limit, keep=self.sent)
        if len(text) > self.sent:
            self.out.write(text[self.sent :])
        self.sent = len(text)
        return text


@dataclass
class ToolCall:
    name: str = ""
    arguments: str = ""
    id: str = ""


@dataclass
class Completion:
    chars: int = 0  # characters of text the model sent (the text itself goes to `on_text`)
    tool_calls: dict[int, ToolCall] = field(default_factory=dict)
    finish_reason: str | None = None


def _problem(exc: openai.APIStatusError) -> str:
    detail = ""
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            detail = err["message"]
        elif isinstance(err, str):
            detail = err
    detail = detail[:MAX_ERROR_DETAIL_CHARS]
    return f"The language model answered HTTP {exc.status_code}" + (f": {detail}" if detail else "")


# -- connections ----------------------------------------------------------------------

_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
# A request on a pooled connection that the server had just closed is sent again on a new
# connection, at most this many times (a pool may hold several such connections).
STALE_CONNECTION_RETRIES = 3


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connection_failure(exc: BaseException) -> str | None:
    """What an exception from the model client says about the connection: "timeout",
    "connection_refused", "connection_reset", or None when it says nothing.

    The SDK's aiohttp transport maps every aiohttp connection error to httpx's
    ConnectTimeout, a closed keep-alive connection included, so the SDK reports it as a
    timeout; the aiohttp or OS error underneath says what really happened.
    """
    for cause in _causes(exc):
        if isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError):
            return "timeout"  # aiohttp's own, before the generic connection errors below
        if isinstance(cause, aiohttp.ClientConnectorError | ConnectionRefusedError):
            return "connection_refused"  # nothing accepted the connection (or no such host)
        if isinstance(
            cause,
            aiohttp.ServerDisconnectedError
            | aiohttp.ClientPayloadError
            | ConnectionResetError
            | BrokenPipeError,
        ):
            return "connection_reset"
        if isinstance(cause, aiohttp.ClientOSError) and cause.errno in _RESET_ERRNOS:
            return "connection_reset"
    for cause in _causes(exc):  # no aiohttp error underneath: httpx's own names hold
        if isinstance(cause, httpx2.TimeoutException | openai.APITimeoutError):
            return "timeout"
        if isinstance(cause, httpx2.ConnectError):
            return "connection_refused"
        if isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError):
            return "connection_reset"
    return None


def _stale_connection(exc: BaseException) -> bool:
    """A pooled keep-alive connection the server had closed: it failed before any byte of
    an answer came back, so the server never started on the request."""
    return any(
        isinstance(cause, aiohttp.ServerDisconnectedError)
        or (isinstance(cause, aiohttp.ClientOSError) and cause.errno in _RESET_ERRNOS)
        for cause in _causes(exc)
    )


class _FreshConnectionTransport(httpx2.AsyncBaseTransport):
    """Sends a request again, on a new connection, when the pooled one it went out on
    turns out closed by the server before an answer began (the server's keep-alive timer
    fired as the request left). Nothing reached the model then, so this is safe whatever
    LLM_MAX_RETRIES says; it is not a retry of anything the model saw."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        replayable = isinstance(request.stream, httpx2.ByteStream)
        for attempt in range(STALE_CONNECTION_RETRIES + 1):
            try:
                return await self.inner.handle_async_request(request)
            except httpx2.TransportError as exc:
                if not replayable or attempt == STALE_CONNECTION_RETRIES:
                    raise
                if not _stale_connection(exc):
                    raise
                logger.info("the model server had closed a pooled connection: sent again")
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.inner.aclose()


class ModelHttpClient(openai.DefaultAioHttpClient):
    """The SDK's aiohttp client, with a pool whose idle connections expire before the
    model server's (`keepalive_seconds`) and with stale connections sent again."""

    def __init__(self, *, keepalive_seconds: float) -> None:
        super().__init__(
            limits=httpx2.Limits(
                max_connections=1000,
                max_keepalive_connections=100,
                keepalive_expiry=keepalive_seconds,
            )
        )

    def _init_transport(self, *args: Any, **kwargs: Any) -> httpx2.AsyncBaseTransport:
        return _FreshConnectionTransport(super()._init_transport(*args, **kwargs))


def build_client(
    *,
    base_url: str,
    api_key: str | None,
    auth_header: str,
    timeout_seconds: float,
    max_retries: int,
    headers: dict[str, str] | None = None,
    keepalive_seconds: float = 4.0,
) -> AsyncOpenAI:
    """One client per app: its connection pool (1,000 connections) is shared by all turns."""
    headers = dict(headers or {})
    if api_key and auth_header.lower() != "authorization":
        headers[auth_header] = api_key  # e.g. Azure's "api-key"
    return AsyncOpenAI(
        base_url=base_url,
        # The SDK insists on a key; local servers (Ollama, llama.cpp) ignore it.
        api_key=api_key or "none",
        timeout=openai.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
        max_retries=max_retries,
        default_headers=headers,
        # The SDK's aiohttp transport (the `aiohttp` extra): a streamed chunk costs the
        # event loop 37-48 µs through it against ~100 µs through the default httpx one
        # (measured, 300 streams of 30 chunks), and every generating reply pays it for
        # every token.
        http_client=ModelHttpClient(keepalive_seconds=keepalive_seconds),
    )


_CONNECTION_MESSAGES = {
    # (failure, whether the reply had started)
    ("timeout", False): "The language model did not answer in time",
    ("timeout", True): "The language model stopped answering in the middle of its reply",
    ("connection_refused", False): "The language model's server refused the connection",
    ("connection_reset", False): "The language model's server closed the connection",
    ("connection_reset", True): "The language model's reply was cut off",
}


def _connection_error(exc: BaseException, *, started: bool) -> AssistantError:
    failure = connection_failure(exc)
    message = _CONNECTION_MESSAGES.get((failure or "", started)) or (
        "The language model's reply was cut off" if started else "The language model failed"
    )
    return AssistantError(message, failure=failure)


class LlmWriter:
    name = "openai"

    def __init__(
        self,
        *,
        client: AsyncOpenAI,
        model: str,
        temperature: float = 0.7,
        decides_intents: bool = True,
        max_tokens: int | None = None,
        sampling: dict[str, Any] | None = None,
        max_reply_chars: int = 200_000,
    ) -> None:
        self.client = client
        self.max_reply_chars = max_reply_chars  # past this, the model is no longer read
        self.model = model
        self.temperature = temperature
        self.decides_intents = decides_intents
        self.max_tokens = max_tokens
        self.sampling = sampling or {}  # more of the server's sampling options, sent as they are
        self.model_name = model
        self.label = model
        self.model_id = model  # what conversations and replies record

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmWriter:
        client = build_client(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            auth_header=settings.llm_auth_header,
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            keepalive_seconds=settings.llm_keepalive_seconds,
        )
        return cls(
            client=client,
            model=settings.llm_model,
            temperature=settings.llm_temperature,
            decides_intents=settings.llm_intents == "model",
            max_reply_chars=settings.max_reply_chars,
        )

    async def aclose(self) -> None:
        await self.client.close()

    def messages(
        self, *, turn: TurnInput, system: str, history_chars: int | None = None
    ) -> list[dict[str, str]]:
        """The system prompt, the history and the message; with `history_chars`, only the
        newest history messages that fit in that many characters (a small model's context)."""
        history = [
            {"role": m.role, "content": m.content}
            for m in turn.history
            if m.role in ("user", "assistant") and m.content
        ]
        if history_chars is not None:
            kept: list[dict[str, str]] = []
            budget = history_chars
            for m in reversed(history):
                budget -= len(m["content"])
                if budget < 0:
                    break
                kept.append(m)
            history = kept[::-1]
        # The dropped start of a long conversation, as the model summarised it.
        summary = (
            [{"role": "system", "content": SUMMARY_PREFIX + turn.summary}] if turn.summary else []
        )
        return [
            {"role": "system", "content": system},
            *summary,
            *history,
            {"role": "user", "content": turn.message},
        ]

    async def stream(
        self,
        messages: list[dict[str, str]],
        *,
        out: ReplyOutput,
        on_text: Any,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One streamed completion: text pieces go to `on_text` as they arrive.

        The SDK makes the request (auth, timeouts, retries before the reply starts, error
        mapping); the event lines are parsed here with `json.loads`, which costs a fraction
        of building the SDK's typed object for every chunk of every reply.
        """
        body: dict[str, Any] = {"messages": messages, "temperature": self.temperature}
        if max_tokens is not None or self.max_tokens is not None:
            body["max_tokens"] = max_tokens or self.max_tokens
        body.update(self.sampling)
        if tools:
            body["tools"] = tools
        return await self.stream_body(body, out=out, on_text=on_text)

    async def stream_body(
        self, body: dict[str, Any], *, out: ReplyOutput, on_text: Any, model: str | None = None
    ) -> Completion:
        """One streamed completion of a whole request body, sent as it is (messages,
        sampling, `tools`, `tool_choice`), with usage asked for: what `stream` builds, and
        what a client of `/v1/chat/completions` sent."""
        result = Completion()
        # The body goes in `extra_body`, which the SDK sends as it is: its typed arguments
        # are first walked against the request's TypedDicts, which costs 0.5 ms for a
        # two-message request and 3 ms for twenty (measured with openai 3.57), on the event
        # loop, for every turn. Plain strings and numbers need none of that conversion.
        body = {**body, "stream_options": {"include_usage": True}}
        try:
            create: Any = self.client.chat.completions.with_streaming_response.create
            async with create(
                model=model or self.model, messages=[], stream=True, extra_body=body
            ) as response:
                async for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    self._take_chunk(data, result, out=out, on_text=on_text)
                    if result.chars > self.max_reply_chars:
                        break  # MAX_REPLY_CHARS: what follows could never be kept
        except openai.APIStatusError as exc:
            raise AssistantError(_problem(exc), failure="rejected") from exc
        except (openai.APIConnectionError, httpx2.HTTPError) as exc:
            # APITimeoutError is an APIConnectionError: what failed is in its causes.
            raise _connection_error(exc, started=isinstance(exc, httpx2.HTTPError)) from exc
        except openai.OpenAIError as exc:
            raise AssistantError(f"The language model failed: {type(exc).__name__}") from exc
        return result

    @staticmethod
    def _take_chunk(data: str, result: Completion, *, out: ReplyOutput, on_text: Any) -> None:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise AssistantError("The language model sent a reply that is not JSON") from exc
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else str(error)
            detail = str(message or "an error")[:MAX_ERROR_DETAIL_CHARS]
            raise AssistantError(f"The language model failed mid-reply: {detail}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.add_usage(
                Usage(
                    int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                )
            )
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            if isinstance(reason, str):
                result.finish_reason = reason
            if not isinstance(delta, dict):
                continue
            content = delta.get("content")
            if isinstance(content, str) and content:
                result.chars += len(content)
                on_text(content)
            for call in delta.get("tool_calls") or ():
                if not isinstance(call, dict):
                    continue
                slot = result.tool_calls.setdefault(int(call.get("index") or 0), ToolCall())
                slot.id += call.get("id") or ""
                function = call.get("function") or {}
                if isinstance(function, dict):
                    slot.name += function.get("name") or ""
                    slot.arguments += function.get("arguments") or ""

    def _system(self, state: LedgerState, task: str | None = None) -> str:
        parts = [BASE_PROMPT.format(capabilities=describe_capabilities()), ledger_summary(state)]
        if task:
            parts.append(task)
        return "\n\n".join(parts)

    async def decide(
        self, *, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> Intent | None:
        answer = AnswerWriter(out)
        completion = await self.stream(
            self.messages(turn=turn, system=self._system(state, DECIDE_TASK)),
            out=out,
            on_text=answer.feed,
            tools=TOOLS,
        )
        for call in completion.tool_calls.values():
            intent = intent_from_tool(call)
            if intent is not None:
                return intent
        if not answer.started:
            raise AssistantError("The language model answered with an empty message")
        return None

    async def write_draft(
        self,
        *,
        request: DraftRequest,
        version: int,
        turn: TurnInput,
        state: LedgerState,
        out: ReplyOutput,
    ) -> WrittenDraft:
        rule = PLATFORM_RULES[request.platform]
        context = json.dumps(_clip(request.context) or "none", ensure_ascii=False)
        task = (
            f"Your task now: write version {version} of a {rule.name} post about "
            f"{json.dumps(request.topic, ensure_ascii=False)}.\n"
            f"Context from the user: {context}.\n"
            f"Aim for about {rule.target_chars} characters, never more than {rule.max_chars}; "
            f"end with {rule.min_hashtags} to {rule.max_hashtags} relevant hashtags. "
            + (
                "Make it clearly different from the earlier versions in this conversation. "
                if version > 1
                else ""
            )
            + "Answer with the post text only: no preface, no quotes, no explanation."
        )
        streamer = PostStreamer(out, platform=request.platform, limit=rule.max_chars)
        await self.stream(
            self.messages(turn=turn, system=self._system(state, task)),
            out=out,
            on_text=streamer.feed,
        )
        text = streamer.finish()
        if not text.strip(" …"):
            raise AssistantError("The language model answered with an empty post")
        return WrittenDraft(text=text, hashtags=hashtags_in(text))

    async def answer(
        self, *, intent: Intent, turn: TurnInput, state: LedgerState, out: ReplyOutput
    ) -> None:
        # While a draft waits, an unclear answer gets the ledger's own question: the model
        # must not guess whether "sounds good" meant "post it".
        if intent.kind == IntentKind.UNCLEAR and intent.clarification and state.has_pending:
            out.write(intent.clarification)
            return
        task = (
            "Your task now: answer the user's last message helpfully and briefly. If they seem "
            "to want a post, ask what it should be about and for which platform."
        )
        answer = AnswerWriter(out)
        await self.stream(
            self.messages(turn=turn, system=self._system(state, task)),
            out=out,
            on_text=answer.feed,
        )
        if not answer.started:
            raise AssistantError("The language model answered with an empty message")

    async def write_title(self, *, message: str, reply: str) -> str:
        """A short title for a conversation that began with `message` and `reply`, in the
        language of the message (the caller tidies and checks it)."""
        pieces: list[str] = []
        await self.stream(
            title_messages(message=message, reply=reply),
            out=QuietOutput(),
            on_text=pieces.append,
            max_tokens=TITLE_MAX_TOKENS,
        )
        return "".join(pieces)

    async def write_summary(self, *, previous: str | None, messages: list[tuple[str, str]]) -> str:
        """A summary of the start of a conversation: `previous` (the summary of what came
        before `messages`, if any) and `messages` ((role, content), oldest first)."""
        pieces: list[str] = []
        await self.stream(
            summary_messages(previous=previous, messages=messages),
            out=QuietOutput(),
            on_text=pieces.append,
            max_tokens=SUMMARY_MAX_TOKENS,
        )
        return "".join(pieces)


SUMMARY_MAX_TOKENS = 400
SUMMARY_EXCERPT_CHARS = 2000  # of each message summarised
SUMMARY_PROMPT = (
    "Summarise the conversation below so that it can be carried on without it: the facts, "
    "names, numbers, decisions, preferences and open questions it holds, in the language "
    "of the conversation, in at most 150 words. Answer with the summary only."
)


def summary_messages(
    *, previous: str | None, messages: list[tuple[str, str]]
) -> list[dict[str, str]]:
    parts = [f"Summary of what came before: {previous}"] if previous else []
    for role, content in messages:
        name = "User" if role == "user" else "Assistant"
        parts.append(f"{name}: {content[:SUMMARY_EXCERPT_CHARS]}")
    return [
        {"role": "system", "content": SUMMARY_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


TITLE_MAX_TOKENS = 24
TITLE_EXCERPT_CHARS = 1200
TITLE_PROMPT = (
    "Write a title for the conversation below: at most six words, in the language of the "
    "user's message. Answer with the title only, without quotes."
)


def title_messages(*, message: str, reply: str) -> list[dict[str, str]]:
    excerpt = f"User: {message[:TITLE_EXCERPT_CHARS]}\n\nAssistant: {reply[:TITLE_EXCERPT_CHARS]}"
    return [{"role": "system", "content": TITLE_PROMPT}, {"role": "user", "content": excerpt}]


class QuietOutput:
    """A `ReplyOutput` for work that is no turn's reply (a title): it keeps nothing."""

    def write(self, text: str) -> None:
        pass

    @property
    def text(self) -> str:
        return ""

    def add_usage(self, usage: Usage) -> None:
        pass

    def queued(self, position: int | None) -> None:
        pass

    def set_outcome(self, outcome: Any) -> None:
        pass

    def shielded(self) -> Any:
        return contextlib.nullcontext()


class AnswerWriter:
    """Streams a free answer, without the whitespace some models start with."""

    def __init__(self, out: ReplyOutput) -> None:
        self.out = out
        self.started = False

    def feed(self, piece: str) -> None:
        if not self.started:
            piece = piece.lstrip()
            if not piece:
                return
            self.started = True
        self.out.write(piece)


def intent_from_tool(call: ToolCall) -> Intent | None:
    try:
        args = json.loads(call.arguments or "{}")
    except ValueError:
        logger.warning("the model called %s with arguments that are not JSON", call.name)
        return None
    if not isinstance(args, dict):
        return None
    platform = canonical_platform(args.get("platform")) if args.get("platform") else None
    with_image = bool(args.get("with_image", False))
    if call.name == "create_post":
        topic = args.get("topic")
        if not isinstance(topic, str) or not topic.strip():
            return None
        return Intent(
            IntentKind.CREATE_POST,
            platform=platform,
            topic=_clip(topic.strip(), 200),
            with_image=with_image,
        )
    if call.name == "regenerate_post":
        return Intent(IntentKind.REGENERATE, platform=platform, with_image=with_image)
    if call.name == "publish_draft":
        return Intent(IntentKind.PUBLISH)
    if call.name == "cancel_draft":
        return Intent(IntentKind.CANCEL)
    return None
