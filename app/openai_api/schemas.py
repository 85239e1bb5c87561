"""What `/v1` reads and writes: OpenAI's Chat Completions shapes, as far as Chatkeep uses
them. Fields it does not read are kept (`extra="allow"`) and go to the model as they came."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Budgets of one request (the body as a whole is bounded by MAX_REQUEST_BYTES).
MAX_MESSAGES = 1000
MAX_TOOL_CALLS = 128


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=200)
    arguments: str = ""


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(default="", max_length=200)
    type: str = "function"
    function: FunctionCall


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=200)
    tool_calls: list[ToolCallIn] | None = Field(default=None, max_length=MAX_TOOL_CALLS)
    tool_call_id: str | None = Field(default=None, max_length=200)

    def text(self) -> str:
        """The message's text: a string, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type == "text")

    def has_other_parts(self) -> bool:
        return isinstance(self.content, list) and any(p.type != "text" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """`POST /v1/chat/completions`. `metadata.chatkeep_session_id` names the conversation
    to continue, skipping the matching of the messages against stored paths."""

    model_config = ConfigDict(extra="allow")

    # An id of GET /v1/models; none: the default model (the first listed).
    model: str | None = Field(default=None, max_length=200)
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    n: int | None = Field(default=None, ge=1, le=1)

    def session_id(self) -> str | None:
        value = (self.metadata or {}).get("chatkeep_session_id")
        return value if isinstance(value, str) and value else None

    def model_body(self) -> dict[str, Any]:
        """What goes to the model: the request as the client sent it, less what only
        concerns Chatkeep and the way the reply travels (it is always streamed)."""
        body = self.model_dump(mode="json", exclude_none=True, exclude_unset=True)
        for name in ("model", "stream", "stream_options", "metadata", "n", "store"):
            body.pop(name, None)
        return body


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "chatkeep"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
