"""`/v1` offers the app's catalog of models (`GET /api/models`): each id answers with its
own backend, and the conversation and the reply record it as on the page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
import sqlalchemy as sa

from app.assistant.factory import build_assistant
from app.core.config import ModelConfig, Settings
from tests.conftest import register
from tests.fakemodel import FakeModel, Planned, serve_model
from tests.usage.conftest import counts, make_superuser

pytestmark = pytest.mark.storage


@pytest.fixture
def two_models(app, settings: Settings, monkeypatch) -> Iterator[tuple[FakeModel, FakeModel]]:
    """The built-in templates as the default model, two models of MODELS on fake
    OpenAI-compatible servers (`alpha`, and `beta` under another upstream name and a key),
    and the templates again as a model of MODELS."""
    alpha = FakeModel(default=Planned(text="Alpha answers.", usage=(11, 7)))
    beta = FakeModel(default=Planned(text="Beta answers.", usage=(100, 50)))
    monkeypatch.setenv("BETA_V1_KEY", "sk-beta-v1")
    with serve_model(alpha) as a, serve_model(beta) as b:
        configured = settings.model_copy(
            update={
                "assistant_backend": "builtin",
                "models": [
                    ModelConfig(id="alpha", name="Alpha", base_url=f"{a.url}/v1"),
                    ModelConfig(
                        id="beta",
                        name="Beta 70B",
                        base_url=f"{b.url}/v1",
                        model="beta-70b-instruct",
                        api_key_env="BETA_V1_KEY",
                    ),
                    ModelConfig(id="templates", name="Templates only", backend="builtin"),
                ],
            }
        )
        app.state.assistant = build_assistant(configured)
        yield alpha, beta


@pytest.fixture
async def user(client: httpx.AsyncClient) -> dict[str, Any]:
    me = await register(client)
    r = await client.post("/api/keys", json={"name": "models"}, headers=me)
    assert r.status_code == 201, r.text
    return {"session": me, "key": r.json()["key"]}


@pytest.fixture
async def sdk(app, user) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver")
    client = openai.AsyncOpenAI(
        base_url="http://testserver/v1", api_key=user["key"], http_client=http, max_retries=0
    )
    async with client:
        yield client


async def _detail(client: httpx.AsyncClient, user: dict[str, Any], sid: str) -> dict[str, Any]:
    r = await client.get(f"/api/sessions/{sid}", headers=user["session"])
    assert r.status_code == 200, r.text
    return r.json()


def _replies(detail: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(m["content"], m["model"]) for m in detail["messages"] if m["role"] == "assistant"]


async def test_v1_lists_the_catalog_and_each_id_is_answered_by_its_model(
    client, two_models, user, sdk
):
    alpha, beta = two_models
    catalog = [m["id"] for m in (await client.get("/api/models")).json()["models"]]
    assert catalog == ["builtin", "alpha", "beta", "templates"]
    listed = await sdk.models.list()
    assert [m.id for m in listed.data] == catalog
    assert {(m.object, m.owned_by) for m in listed.data} == {("model", "chatkeep")}

    # Each id, not streamed: its backend answers, and the conversation and the reply say so.
    answered = {}
    for model in catalog:
        asked = [{"role": "user", "content": f"Who answers as {model}?"}]
        answer = await sdk.chat.completions.create(model=model, messages=asked)
        assert answer.model == model
        sid = answer.model_extra["chatkeep"]["sessionId"]
        detail = await _detail(client, user, sid)
        assert detail["model"] == model
        ((text, recorded),) = _replies(detail)
        assert recorded == model and text == answer.choices[0].message.content
        answered[model] = text
    assert answered["alpha"] == "Alpha answers." and answered["beta"] == "Beta answers."
    assert answered["builtin"] == answered["templates"]  # the same templates, under two ids
    assert answered["builtin"] not in ("Alpha answers.", "Beta answers.")
    assert [r.last_user for r in alpha.requests] == ["Who answers as alpha?"]
    assert [r.last_user for r in beta.requests] == ["Who answers as beta?"]
    # beta is asked for under its upstream name, with its own key.
    assert beta.requests[0].body["model"] == "beta-70b-instruct"
    assert beta.requests[0].headers["authorization"] == "Bearer sk-beta-v1"
    assert alpha.requests[0].body["model"] == "alpha"

    # Streamed, in a conversation named in metadata: the reply is beta's, and the
    # conversation switches to beta as `model` on a message of POST /api/chat switches it.
    first = await sdk.chat.completions.create(
        model="alpha", messages=[{"role": "user", "content": "Start with alpha."}]
    )
    sid = first.model_extra["chatkeep"]["sessionId"]
    stream = await sdk.chat.completions.create(
        model="beta",
        messages=[{"role": "user", "content": "Go on with beta."}],
        metadata={"chatkeep_session_id": sid},
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert {c.model for c in chunks} == {"beta"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Beta answers."
    )
    assert chunks[-1].usage.total_tokens == 150
    detail = await _detail(client, user, sid)
    assert detail["model"] == "beta"
    assert _replies(detail) == [("Alpha answers.", "alpha"), ("Beta answers.", "beta")]
    assert beta.requests[-1].last_user == "Go on with beta."
    # The page's next message, sent without a model, is answered by the conversation's.
    r = await client.post(
        "/api/chat",
        json={"messages": [{"role": "user", "content": "And from the page?"}], "sessionId": sid},
        headers=user["session"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["reply"] == "Beta answers."


async def test_an_unknown_model_is_openais_404_and_nothing_is_stored(
    client, two_models, user, sdk, sessionmaker
):
    alpha, beta = two_models
    before = await counts(sessionmaker)
    for name in ("gpt-nope", "Beta 70B", "beta-70b-instruct", ""):
        with pytest.raises(openai.NotFoundError) as unknown:
            await sdk.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "hi"}]
            )
        error = unknown.value.body
        assert (error["code"], error["type"]) == ("model_not_found", "invalid_request_error")
        # Only what the client sent: no upstream name, address or key of any model.
        assert error["message"] == (
            f"The model {name!r} does not exist here; GET /v1/models lists them."
        )
    r = await client.post(
        "/v1/chat/completions",
        json={"model": "gpt-nope", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {user['key']}"},
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    assert await counts(sessionmaker) == before
    assert alpha.requests == [] and beta.requests == []


async def test_no_model_or_the_former_id_is_the_default_model(client, two_models, user):
    alpha, beta = two_models
    key = {"Authorization": f"Bearer {user['key']}"}
    for body in (
        {"messages": [{"role": "user", "content": "No model named."}]},
        {"model": "chatkeep-builtin", "messages": [{"role": "user", "content": "Former id."}]},
    ):
        r = await client.post("/v1/chat/completions", json=body, headers=key)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "builtin"
        detail = await _detail(client, user, r.json()["chatkeep"]["sessionId"])
        assert detail["model"] == "builtin"
        assert [model for _, model in _replies(detail)] == ["builtin"]
    assert alpha.requests == [] and beta.requests == []


async def test_a_used_up_budget_refuses_every_model_of_v1(
    client, two_models, user, sdk, sessionmaker
):
    alpha, beta = two_models
    from_admin = await register(client, "root-v1@example.com")
    await make_superuser(sessionmaker, "root-v1@example.com")
    me = (await client.get("/users/me", headers=user["session"])).json()["id"]
    r = await client.put(
        f"/api/admin/users/{me}/budget", json={"tokensPerDay": 100}, headers=from_admin
    )
    assert r.status_code == 200, r.text

    # beta's reply costs 150 tokens: over the day's 100, so no model answers after it.
    await sdk.chat.completions.create(model="beta", messages=[{"role": "user", "content": "1"}])
    before = await counts(sessionmaker)
    for model in ("alpha", "beta", "builtin"):
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "2"}]
            )
        assert refused.value.body["code"] == "quota_exceeded"
    assert await counts(sessionmaker) == before
    assert len(alpha.requests) == 0 and len(beta.requests) == 1

    # The usage is counted under the model that wrote the reply.
    usage = (await client.get("/api/admin/usage", headers=from_admin)).json()["items"]
    (mine,) = [u for u in usage if u["userId"] == me]
    assert [(m["model"], m["totalTokens"]) for m in mine["models"]] == [("beta", 150)]
    async with sessionmaker() as s:
        stored = (
            await s.execute(
                sa.text("SELECT metadata->>'model' FROM chat_message WHERE role = 'assistant'")
            )
        ).scalars()
        assert list(stored) == ["beta"]
