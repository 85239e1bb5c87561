"""ASSISTANT_BACKEND=openai against a real OpenAI-compatible server on localhost, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.assistant.builtin import NOTHING_TO_PUBLISH, PUBLISHED, QUESTION
from app.assistant.factory import build_assistant
from app.core.config import Settings
from tests.assistant.localserver import LocalServer
from tests.conftest import chat, register
from tests.fakemodel import ClosingKeptConnections, FakeModel, Planned, serve_model
from tests.processes import free_port

pytestmark = pytest.mark.storage

POST_V1 = "Diwali lights up our hearts and homes. Wishing you joy! #Diwali #FestivalOfLights"
POST_V2 = "May this Diwali bring you light, laughter and sweets. #HappyDiwali"


@pytest.fixture
def llm() -> Iterator[tuple[FakeModel, LocalServer]]:
    model = FakeModel(default=Planned(text=POST_V1))
    with serve_model(model) as server:
        yield model, server


def use_llm(app: FastAPI, settings: Settings, server: LocalServer, **extra: Any) -> None:
    values: dict[str, Any] = {
        "assistant_backend": "openai",
        "llm_base_url": f"{server.url}/v1",
        "llm_api_key": "sk-test-key",
        "llm_model": "test-model",
        "llm_intents": "rules",
        **extra,
    }
    app.state.assistant = build_assistant(settings.model_copy(update=values))


async def _drafts(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> list[Any]:
    r = await client.get(f"/api/sessions/{sid}/drafts", headers=headers)
    assert r.status_code == 200, r.text
    drafts: list[Any] = r.json()["drafts"]
    return drafts


async def test_llm_writes_drafts_and_the_ledger_decides(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server)
    headers = await register(client)

    r = await chat(client, headers, "Create a Facebook post about Diwali", context="We are Acme")
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    assert POST_V1 in r.json()["reply"]
    assert r.json()["reply"].endswith(QUESTION)

    (sent,) = model.requests
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    body = sent.body
    assert body["model"] == "test-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
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
    assert len(model.requests) == 1

    model.plan(Planned(text=POST_V2))
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert POST_V2 in r.json()["reply"]
    regen = model.requests[-1].body
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

    # Usage is counted per reply and summed per conversation (two model replies).
    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert detail["usage"] == {"promptTokens": 22, "completionTokens": 14, "totalTokens": 36}


async def test_a_post_that_comes_fenced_quoted_and_too_long_is_cleaned_and_cut(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    """What streams is never taken back: the deltas add up to the stored reply, even
    when the end of the model's text is dropped (a closing fence) or cut (too long)."""
    model, server = llm
    use_llm(app, settings, server)
    long_post = " ".join(["Summer sale starts now, everything must go!"] * 20) + " #Sale"
    model.plan(Planned(chunks=["```text\n", '"', *[w + " " for w in long_post.split()], '"\n```']))
    headers = await register(client)
    body = {"messages": [{"role": "user", "content": "Tweet about our summer sale"}]}
    async with client.stream(
        "POST", "/api/chat", json=body, headers={**headers, "accept": "text/event-stream"}
    ) as r:
        events = [e async for e in sse_events(r)]
    deltas = "".join(data["text"] for name, data in events if name == "delta")
    (done,) = [data for name, data in events if name == "done"]
    assert deltas == done["reply"]
    (draft,) = await _drafts(client, headers, done["sessionId"])
    text = draft["versions"][0]["text"]
    assert text in done["reply"]
    assert "```" not in text and not text.startswith('"')
    assert len(text) <= 280 and text.endswith("…")


async def test_general_questions_go_to_the_model(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server, llm_auth_header="api-key")
    model.plan(Planned(text="Weekday mornings work well."))
    headers = await register(client)
    r = await chat(client, headers, "When is the best time to post on LinkedIn?")
    assert r.json()["reply"] == "Weekday mornings work well."
    sent = model.requests[0]
    assert sent.headers["api-key"] == "sk-test-key"
    assert "No post has been drafted" in sent.body["messages"][0]["content"]


async def test_the_model_decides_intents_in_any_language_but_the_ledger_acts(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server, llm_intents="model")
    headers = await register(client)
    # The model says "publish" with nothing waiting: the ledger answers, nothing is posted.
    model.plan(Planned(tool=("publish_draft", {}), usage=(5, 1)))
    r = await chat(client, headers, "हाँ, पोस्ट कर दो")
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    assert r.json()["reply"] == NOTHING_TO_PUBLISH
    assert "tools" in model.requests[-1].body
    # A request in Hindi becomes a draft through a tool call, then a second (writing) call.
    model.plan(
        Planned(tool=("create_post", {"platform": "instagram", "topic": "दिवाली"})),
        Planned(text="दिवाली की शुभकामनाएँ! #Diwali"),
    )
    r = await chat(client, headers, "दिवाली पर इंस्टाग्राम पोस्ट बनाओ", session_id=sid)
    assert "दिवाली की शुभकामनाएँ! #Diwali" in r.json()["reply"]
    (draft,) = await _drafts(client, headers, sid)
    assert draft["platform"] == "instagram" and draft["status"] == "pending"
    # "Oui" means post it: the model calls the tool, the ledger publishes the pending draft.
    model.plan(Planned(tool=("publish_draft", {})))
    r = await chat(client, headers, "oui, vas-y", session_id=sid)
    assert r.json()["reply"] == PUBLISHED
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "published"
    # A question gets the model's own words, streamed straight through.
    model.plan(Planned(text="Il est midi à Tokyo."))
    r = await chat(client, headers, "Quelle heure est-il à Tokyo ?", session_id=sid)
    assert r.json()["reply"] == "Il est midi à Tokyo."


async def test_429_is_retried_after_retry_after(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server)
    model.plan(Planned(status=429, error="slow down", headers={"Retry-After": "0"}))
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali")
    assert r.status_code == 200, r.text
    assert POST_V1 in r.json()["reply"]
    assert len(model.requests) == 2
    assert len(await _drafts(client, headers, r.json()["sessionId"])) == 1


async def _assert_message_kept_and_nothing_drafted(
    client: httpx.AsyncClient, headers: dict[str, str], response: httpx.Response, text: str
) -> None:
    assert response.headers["content-type"] == "application/problem+json"
    sid = response.json()["sessionId"]
    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [("user", text)]
    assert detail["activeTurn"] is None
    assert await _drafts(client, headers, sid) == []


async def test_5xx_retried_then_502_keeps_the_message(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server, llm_max_retries=2)
    model.plan(*[Planned(status=500, error="model crashed")] * 3)
    headers = await register(client)
    text = "Create a Facebook post about Diwali with image"
    r = await chat(client, headers, text)
    assert r.status_code == 502
    assert "model crashed" in r.json()["detail"]
    assert len(model.requests) == 3  # the first try and two retries
    await _assert_message_kept_and_nothing_drafted(client, headers, r, text)


async def test_other_4xx_is_not_retried(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server)
    model.plan(Planned(status=401, error="invalid api key"))
    headers = await register(client)
    r = await chat(client, headers, "Create a Facebook post about Diwali")
    assert r.status_code == 502
    assert r.json()["code"] == "upstream_rejected"
    assert "invalid api key" in r.json()["detail"]
    assert len(model.requests) == 1


async def test_timeout_is_504_and_keeps_the_message(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server, llm_timeout_seconds=0.3, llm_max_retries=0)
    app.state.turns.timeout_seconds = 0.3
    model.plan(Planned(text=POST_V1, first_token_seconds=5))
    headers = await register(client)
    text = "Create a Facebook post about Diwali"
    r = await chat(client, headers, text)
    assert r.status_code == 504
    assert r.json()["code"] == "upstream_timeout"
    await _assert_message_kept_and_nothing_drafted(client, headers, r, text)


async def sse_events(response: httpx.Response) -> Any:
    """(event, data) pairs of a server-sent event stream, heartbeats left out."""
    from tests.sse import parse_events

    async for event in parse_events(response):
        yield event.name, event.data


async def test_a_reply_cut_off_mid_stream_fails_the_turn_and_keeps_the_message(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server, llm_max_retries=0)
    model.plan(Planned(text="one two three four five six", cut_after=3))
    headers = await register(client)
    text = "When is the best time to post?"
    r = await chat(client, headers, text)
    assert r.status_code == 502
    assert r.json()["code"] == "upstream_connection_reset"
    assert "cut off" in r.json()["detail"]
    await _assert_message_kept_and_nothing_drafted(client, headers, r, text)


async def test_a_pooled_connection_the_server_closed_is_sent_again_not_failed(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    async with ClosingKeptConnections(server.port) as front:
        # No retries of the SDK's: a stale connection is not a failure to retry.
        use_llm(app, settings, server, llm_base_url=f"{front.url}/v1", llm_max_retries=0)
        headers = await register(client)
        sid = None
        for i in range(4):
            r = await chat(client, headers, f"Question number {i}?", session_id=sid)
            assert r.status_code == 200, r.text
            sid = r.json()["sessionId"]
        # The connection of each earlier call was kept, reused, and found closed.
        assert front.closed >= 1
        assert len(model.requests) == 4


async def test_connection_refused_is_named_so(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient
) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    use_llm(app, settings, LocalServer(FakeModel().app()), llm_base_url=f"{nothing}/v1")
    headers = await register(client)
    text = "Anyone there?"
    r = await chat(client, headers, text)
    assert r.status_code == 502
    assert r.json()["code"] == "upstream_connection_refused"
    assert "refused the connection" in r.json()["detail"]
    await _assert_message_kept_and_nothing_drafted(client, headers, r, text)


async def test_a_model_that_answers_an_error_refused_the_request(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, llm: tuple[FakeModel, LocalServer]
) -> None:
    model, server = llm
    use_llm(app, settings, server)
    model.plan(Planned(status=400, error="context length exceeded"))
    headers = await register(client)
    r = await chat(client, headers, "A question")
    assert r.status_code == 502
    assert r.json()["code"] == "upstream_rejected"
    assert "HTTP 400: context length exceeded" in r.json()["detail"]
