"""ASSISTANT_BACKEND=openai against a real OpenAI-compatible server on localhost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.assistant.builtin import PUBLISHED, QUESTION
from app.assistant.factory import build_assistant
from app.core.config import Settings
from tests.assistant.localserver import LocalServer, Planned, Script, chat_completion, serve
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

POST_V1 = "Diwali lights up our hearts and homes. Wishing you joy! #Diwali #FestivalOfLights"
POST_V2 = "May this Diwali bring you light, laughter and sweets. #HappyDiwali"


@pytest.fixture
def llm() -> Iterator[tuple[Script, LocalServer]]:
    script = Script(Planned(body=chat_completion(POST_V1)))
    with serve({"/v1/chat/completions": script}) as server:
        yield script, server


def use_llm(app: FastAPI, settings: Settings, server: LocalServer, **extra: Any) -> None:
    values: dict[str, Any] = {
        "assistant_backend": "openai",
        "llm_base_url": f"{server.url}/v1",
        "llm_api_key": "sk-test-key",
        "llm_model": "test-model",
        "llm_retry_backoff_seconds": 0.01,
        **extra,
    }
    app.state.assistant = build_assistant(settings.model_copy(update=values))


async def _drafts(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> list[Any]:
    r = await client.get(f"/api/sessions/{sid}/drafts", headers=headers)
    assert r.status_code == 200, r.text
    drafts: list[Any] = r.json()["drafts"]
    return drafts


async def test_llm_writes_drafts_and_the_ledger_decides(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[Script, LocalServer]
) -> None:
    script, server = llm
    use_llm(app, settings, server)
    headers = await register(client)

    r = await chat(client, headers, "Create a Facebook post about Diwali", context="We are Acme")
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    assert POST_V1 in r.json()["reply"]
    assert r.json()["reply"].endswith(QUESTION)

    (sent,) = script.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    body = sent.json()
    assert body["model"] == "test-model"
    assert body["messages"][0]["role"] == "system"
    assert "Facebook post about" in body["messages"][0]["content"]
    assert "We are Acme" in body["messages"][0]["content"]
    assert body["messages"][-1] == {
        "role": "user",
        "content": "Create a Facebook post about Diwali",
    }

    (draft,) = await _drafts(client, headers, sid)
    assert draft["versions"][0]["text"] == POST_V1
    assert draft["versions"][0]["hashtags"] == ["#Diwali", "#FestivalOfLights"]
    assert draft["versions"][0]["writer"] == "openai"

    # Publishing is the ledger's business: no model call, and the model cannot fake it.
    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] == PUBLISHED
    assert len(script.requests) == 1

    script.planned = [Planned(body=chat_completion(POST_V2))]
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert POST_V2 in r.json()["reply"]
    regen = script.requests[-1].json()
    system = regen["messages"][0]["content"]
    # The model is told which post "the previous post" is, with its original request.
    assert '"topic": "Diwali"' in system
    assert '"requestedInMessage": 1' in system
    assert "published" in system
    assert "version 2" in system
    # The bounded history goes along, oldest first, ending with this message.
    history = [(m["role"], m["content"]) for m in regen["messages"][1:]]
    assert history[0] == ("user", "Create a Facebook post about Diwali")
    assert history[1][0] == "assistant" and POST_V1 in history[1][1]
    assert history[2:] == [
        ("user", "yes"),
        ("assistant", PUBLISHED),
        ("user", "regenerate the previous post"),
    ]
    old, new = await _drafts(client, headers, sid)
    assert new["parentDraftId"] == old["id"]
    assert new["versions"][0]["text"] == POST_V2
    assert new["context"] == "We are Acme"


async def test_general_questions_go_to_the_model(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[Script, LocalServer]
) -> None:
    script, server = llm
    use_llm(app, settings, server, llm_auth_header="api-key")
    script.planned = [Planned(body=chat_completion("Weekday mornings work well."))]
    headers = await register(client)
    r = await chat(client, headers, "When is the best time to post on LinkedIn?")
    assert r.json()["reply"] == "Weekday mornings work well."
    sent = script.requests[0]
    assert sent.headers["api-key"] == "sk-test-key"
    assert "authorization" not in sent.headers
    assert "No post has been drafted" in sent.json()["messages"][0]["content"]


async def test_429_is_retried_after_retry_after(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[Script, LocalServer]
) -> None:
    script, server = llm
    use_llm(app, settings, server)
    script.planned = [
        Planned(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
        Planned(body=chat_completion(POST_V1)),
    ]
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali")
    assert r.status_code == 200, r.text
    assert POST_V1 in r.json()["reply"]
    assert len(script.requests) == 2
    assert len(await _drafts(client, headers, r.json()["sessionId"])) == 1


async def _assert_message_kept_and_nothing_drafted(
    client: httpx.AsyncClient, headers: dict[str, str], response: httpx.Response, text: str
) -> None:
    assert response.headers["content-type"] == "application/problem+json"
    sid = response.json()["sessionId"]
    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [("user", text)]
    assert await _drafts(client, headers, sid) == []


async def test_5xx_retried_then_502_keeps_the_message(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[Script, LocalServer]
) -> None:
    script, server = llm
    use_llm(app, settings, server, llm_max_retries=2)
    script.planned = [Planned(status=500, body={"error": {"message": "model crashed"}})]
    headers = await register(client)
    text = "Create a Facebook post about Diwali with image"
    r = await chat(client, headers, text)
    assert r.status_code == 502
    assert "model crashed" in r.json()["detail"]
    assert len(script.requests) == 3  # the first try and two retries
    await _assert_message_kept_and_nothing_drafted(client, headers, r, text)


async def test_other_4xx_is_not_retried(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[Script, LocalServer]
) -> None:
    script, server = llm
    use_llm(app, settings, server)
    script.planned = [Planned(status=401, body={"error": {"message": "invalid api key"}})]
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali")
    assert r.status_code == 502
    assert "invalid api key" in r.json()["detail"]
    assert len(script.requests) == 1


async def test_timeout_is_504_and_keeps_the_message(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[Script, LocalServer]
) -> None:
    script, server = llm
    use_llm(app, settings, server, llm_timeout_seconds=0.2)
    script.planned = [Planned(body=chat_completion(POST_V1), delay_seconds=3)]
    headers = await register(client)
    text = "Create a Facebook post about Diwali"
    r = await chat(client, headers, text)
    assert r.status_code == 504
    assert r.json()["code"] == "upstream_timeout"
    await _assert_message_kept_and_nothing_drafted(client, headers, r, text)
