"""A writer backed by any OpenAI-compatible chat-completions API (OpenAI, Azure OpenAI,
vLLM, Ollama, llama.cpp server, ...).

The model writes post text and general answers. What happens to drafts (publish, cancel,
regenerate) is still decided by `DraftingAssistant` from the ledger, so a model can never
claim to have posted something. The system prompt tells the model the ledger's state, so
"regenerate the previous post" means the same thing to it as to the ledger.
"""

from __future__ import annotations

import json
from typing import Any

from app.assistant.base import AssistantError, AssistantTurn
from app.assistant.builtin import DraftRequest, WrittenDraft, display_platform, hashtags_in
from app.assistant.composer import PLATFORM_RULES, describe_capabilities, measure
from app.assistant.http import RetryPolicy, UpstreamFailure, post_json
from app.assistant.intents import Intent, IntentKind
from app.assistant.ledger import LedgerState
from app.core.config import Settings

MAX_PROMPT_FIELD_CHARS = 2000

BASE_PROMPT = """You are Chatkeep's assistant for writing social-media posts.
You write drafts; the user confirms them. You never publish anything yourself and never \
claim that something was posted: Chatkeep publishes a draft only when the user answers \
"yes", and tells the user so itself. To get a draft, the user asks for a post, e.g. \
"Create a Facebook post about Diwali with image".

What Chatkeep can do:
{capabilities}"""


def _clip(text: str | None, limit: int = MAX_PROMPT_FIELD_CHARS) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ledger_summary(state: LedgerState) -> str:
    """The draft ledger's state, as the model is told it."""
    lines = ["Draft ledger of this conversation:"]
    if state.pending is not None:
        p = state.pending
        lines.append(
            f"- A draft is waiting for the user's answer (post / regenerate / cancel): "
            f"{display_platform(p.platform)} post about {json.dumps(p.topic)}, "
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


def _truncate(platform: str, text: str, limit: int) -> str:
    if measure(platform, text) <= limit:
        return text
    cut = text
    while cut and measure(platform, cut + "…") > limit:
        cut = cut[: max(0, len(cut) - max(1, (measure(platform, cut) - limit) // 2))]
    cut = cut.rstrip()
    space = cut.rfind(" ")
    if space > len(cut) // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _clean_post(text: str) -> str:
    text = text.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text.strip("`").strip()
        first, _, rest = text.partition("\n")
        if rest and " " not in first.strip():
            text = rest.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


class LlmWriter:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        auth_header: str = "Authorization",
        timeout_seconds: float = 30.0,
        retry: RetryPolicy | None = None,
        temperature: float = 0.7,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.auth_header = auth_header
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.temperature = temperature

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmWriter:
        return cls(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            auth_header=settings.llm_auth_header,
            timeout_seconds=settings.llm_timeout_seconds,
            retry=RetryPolicy(
                max_retries=settings.llm_max_retries,
                backoff_seconds=settings.llm_retry_backoff_seconds,
            ),
            temperature=settings.llm_temperature,
        )

    def _headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.auth_header.lower() == "authorization":
            return {"Authorization": f"Bearer {self.api_key}"}
        return {self.auth_header: self.api_key}

    def messages(self, *, turn: AssistantTurn, system: str) -> list[dict[str, str]]:
        out = [{"role": "system", "content": system}]
        for m in turn.history:
            if m.role in ("user", "assistant") and m.content:
                out.append({"role": m.role, "content": m.content})
        out.append({"role": "user", "content": turn.message})
        return out

    async def complete(self, messages: list[dict[str, str]]) -> str:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
        }
        try:
            body = await post_json(
                url=self.url,
                payload=payload,
                headers=self._headers(),
                timeout_seconds=self.timeout_seconds,
                retry=self.retry,
                service="The language model",
            )
        except UpstreamFailure as exc:
            raise AssistantError(str(exc), timed_out=exc.timed_out) from exc
        try:
            content = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise AssistantError("The language model answered without a message") from exc
        if not isinstance(content, str) or not content.strip():
            raise AssistantError("The language model answered with an empty message")
        return content.strip()

    def _system(self, state: LedgerState, task: str | None = None) -> str:
        parts = [BASE_PROMPT.format(capabilities=describe_capabilities()), ledger_summary(state)]
        if task:
            parts.append(task)
        return "\n\n".join(parts)

    async def write_draft(
        self, *, request: DraftRequest, version: int, turn: AssistantTurn, state: LedgerState
    ) -> WrittenDraft:
        rule = PLATFORM_RULES[request.platform]
        context = json.dumps(_clip(request.context) or "none", ensure_ascii=False)
        task = (
            f"Your task now: write version {version} of a {rule.display_name} post about "
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
        text = _clean_post(
            await self.complete(self.messages(turn=turn, system=self._system(state, task)))
        )
        if not text:
            raise AssistantError("The language model answered with an empty post")
        text = _truncate(request.platform, text, rule.max_chars)
        return WrittenDraft(text=text, hashtags=hashtags_in(text))

    async def answer(self, *, intent: Intent, turn: AssistantTurn, state: LedgerState) -> str:
        # While a draft waits, an unclear answer gets the ledger's own question: the model
        # must not guess whether "sounds good" meant "post it".
        if intent.kind == IntentKind.UNCLEAR and intent.clarification and state.has_pending:
            return intent.clarification
        task = (
            "Your task now: answer the user's last message helpfully and briefly. If they seem "
            "to want a post, ask what it should be about and for which platform."
        )
        return await self.complete(self.messages(turn=turn, system=self._system(state, task)))
