"""`/v1`: OpenAI's Chat Completions API, with a personal API key (`Authorization: Bearer
ck_…`). Each completion is a chat turn of the key's owner (`app.openai_api.service`);
closing the request stops the reply, as Stop does on the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from app.auth.dependencies import CurrentUser, RateLimit, VerifiedEmail
from app.auth.tokens import STATE_API_KEY
from app.core.db import RequestSessionDep
from app.core.errors import AppError, NotFoundError, StoredProblem
from app.core.sse import EventStreamResponse, Frame
from app.openai_api.backends import configured_models, find_model
from app.openai_api.errors import error_body
from app.openai_api.schemas import ChatCompletionRequest, ModelList, ModelOut
from app.openai_api.service import ApiCaller, start_completion
from app.turns.admission import OpenSlotDep, open_slot
from app.turns.dependencies import TurnServicesDep
from app.turns.stream import follow


class ApiKeyRequiredError(AppError):
    status_code = 401
    code = "invalid_api_key"
    title = "Unauthorized"


async def api_caller(request: Request, user: CurrentUser) -> ApiCaller:
    """The owner of the personal API key the request came with; any other sign-in is
    refused."""
    key = getattr(request.state, STATE_API_KEY, None)
    if key is None:
        raise ApiKeyRequiredError(
            "/v1 takes a personal API key: `Authorization: Bearer ck_…` (Settings → API keys)."
        )
    return ApiCaller(user_id=user.id, key_name=key.name)


ApiCallerDep = Annotated[ApiCaller, Depends(api_caller)]

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[RateLimit("default")])
# As `POST /api/chat`: a place in line first (app/turns/admission.py), then the rest.
completions_router = APIRouter(
    prefix="/v1", tags=["openai"], dependencies=[Depends(open_slot), RateLimit("default")]
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "JSON, or chunks with stream"},
    400: {"description": "Invalid request"},
    401: {"description": "No valid API key"},
    404: {"description": "No such model (or conversation)"},
    409: {"description": "A reply is still being written in this conversation"},
    429: {"description": "Rate limited"},
    502: {"description": "The model failed (the messages are kept)"},
    503: {"description": "Too many replies generating on this server"},
}


@router.get("/models", response_model=ModelList)
async def list_models(caller: ApiCallerDep, services: TurnServicesDep) -> ModelList:
    """The models a completion may name."""
    return ModelList(
        data=[ModelOut(id=m.id, owned_by=m.owned_by) for m in configured_models(services.assistant)]
    )


@completions_router.post(
    "/chat/completions",
    responses=_ERRORS,
    dependencies=[RateLimit("chat"), VerifiedEmail],
)
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    caller: ApiCallerDep,
    db: RequestSessionDep,
    services: TurnServicesDep,
    slot: OpenSlotDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Makes retries safe: kept 24 h or more"),
    ] = None,
) -> Response:
    """A reply from the model, recorded in the key owner's history: on the stored path the
    messages continue (a new branch where they differ), or in a new conversation."""
    model = find_model(services.assistant, body.model)
    if model is None:
        raise NotFoundError(
            f"The model {body.model!r} does not exist here; GET /v1/models lists them.",
            code="model_not_found",
        )
    turn_id = await start_completion(
        db=db,
        services=services,
        slot=slot,
        caller=caller,
        body=body,
        model=model,
        idempotency_key=idempotency_key,
    )
    frames = follow(
        services.follow_context(),
        user_id=caller.user_id,
        turn_id=turn_id,
        after=None,
        end_on_drain=False,
    )
    answer = _Answer(turn_id=turn_id, model=model.id, created=int(time.time()))
    first = await anext(frames)  # the `turn` event: which conversation
    session_id = str(first.data.get("sessionId", "")) if first.event == "turn" else ""
    headers = {"X-Chatkeep-Session-Id": session_id}
    stop = _stopper(services, turn_id)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        response = EventStreamResponse(
            answer.chunks(frames, include_usage=include_usage, stop=stop),
            send_timeout=services.settings.sse_send_timeout_seconds,
        )
        response.headers.update(headers)
        return response
    return await answer.whole(request, frames, stop=stop, headers=headers)


def _stopper(services: Any, turn_id: uuid.UUID) -> Any:
    def stop() -> None:
        services.runner.stop(turn_id)

    return stop


class DataFrame(Frame):
    """A `data:` line of OpenAI's stream (no event name, no id)."""

    def encode(self) -> bytes:
        if isinstance(self.data, str):
            return f"data: {self.data}\n\n".encode()
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"data: {body}\n\n".encode()


def _usage(done: dict[str, Any]) -> dict[str, int]:
    usage = done.get("usage") or {}
    prompt = int(usage.get("promptTokens") or 0)
    completion = int(usage.get("completionTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish_reason(done: dict[str, Any]) -> str:
    if done.get("toolCalls"):
        return "tool_calls"
    if done.get("truncated"):
        return "length"
    return "stop"


def _chatkeep(done: dict[str, Any]) -> dict[str, Any]:
    return {
        "sessionId": done.get("sessionId"),
        "seq": done.get("seq"),
        "stopped": done.get("stopped"),
    }


class _Answer:
    def __init__(self, *, turn_id: uuid.UUID, model: str, created: int) -> None:
        self.id = f"chatcmpl-{turn_id.hex}"
        self.model = model
        self.created = created

    def _chunk(self, choices: list[dict[str, Any]], **more: Any) -> DataFrame:
        return DataFrame(
            "chunk",
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": None,
                "choices": choices,
                **more,
            },
        )

    @staticmethod
    def _choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    async def chunks(
        self, frames: AsyncIterator[Frame], *, include_usage: bool, stop: Any
    ) -> AsyncIterator[Frame]:
        """OpenAI's chunks from the turn's events; the reply stops when the client goes."""
        finished = False
        try:
            yield self._chunk(self._choice({"role": "assistant", "content": ""}))
            async for frame in frames:
                if frame.event is None:
                    yield frame  # a heartbeat comment keeps proxies from closing the stream
                elif frame.event == "delta":
                    yield self._chunk(self._choice({"content": frame.data["text"]}))
                elif frame.event == "done":
                    finished = True
                    done = frame.data
                    calls = done.get("toolCalls") or []
                    if calls:
                        delta = {"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]}
                        yield self._chunk(self._choice(delta))
                    more: dict[str, Any] = {"chatkeep": _chatkeep(done)}
                    if not include_usage:
                        more["usage"] = _usage(done)
                    yield self._chunk(self._choice({}, _finish_reason(done)), **more)
                    if include_usage:
                        yield self._chunk([], usage=_usage(done))
                    yield DataFrame("chunk", "[DONE]")
                    return
                elif frame.event == "error":
                    finished = True
                    yield DataFrame("chunk", error_body(frame.data))
                    return
        finally:
            if not finished:
                stop()
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()

    async def whole(
        self, request: Request, frames: AsyncIterator[Frame], *, stop: Any, headers: dict[str, str]
    ) -> Response:
        """The whole reply as one `chat.completion`; the reply stops if the client goes
        before it is written."""
        collect = asyncio.ensure_future(_last_event(frames))
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({collect, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not collect.done():
            stop()  # the client went: keep what was written, as Stop does
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await collect
            return Response(status_code=499)
        kind, data = collect.result()
        if kind == "error":
            raise StoredProblem(data)
        calls = data.get("toolCalls") or None
        message: dict[str, Any] = {"role": "assistant", "content": data["reply"] or None}
        if calls:
            message["tool_calls"] = calls
        else:
            message["content"] = data["reply"]
        return JSONResponse(
            {
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": _finish_reason(data),
                    }
                ],
                "usage": _usage(data),
                "chatkeep": _chatkeep(data),
            },
            headers=headers,
        )


async def _last_event(frames: AsyncIterator[Frame]) -> tuple[str, dict[str, Any]]:
    try:
        async for frame in frames:
            if frame.event in ("done", "error"):
                return str(frame.event), frame.data
    finally:
        aclose = getattr(frames, "aclose", None)
        if aclose is not None:
            await aclose()
    raise RuntimeError("the turn's events ended without done or error")  # pragma: no cover


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body was read before)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
