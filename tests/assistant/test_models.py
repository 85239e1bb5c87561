"""Several models: listed with their names, chosen per conversation, changed later, and
named on every reply they write (API, JSON export, the admin usage view)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from app.assistant.factory import build_assistant
from app.core.config import ModelConfig, Settings
from tests.conftest import chat, register
from tests.fakemodel import FakeModel, Planned, serve_model

pytestmark = pytest.mark.storage


@pytest.fixture
def two_models(app, settings: Settings, monkeypatch) -> Iterator[tuple[FakeModel, FakeModel]]:
    """The default model (`alpha`, on one fake server) and `beta` on another, plus the
    built-in templates as a third choice."""
    alpha, beta = (
        FakeModel(default=Planned(text="Alpha answers.")),
        FakeModel(default=Planned(text="Beta answers.", usage=(100, 50))),
    )
    monkeypatch.setenv("BETA_TEST_KEY", "sk-beta")
    with serve_model(alpha) as a, serve_model(beta) as b:
        configured = settings.model_copy(
            update={
                "assistant_backend": "openai",
                "llm_base_url": f"{a.url}/v1",
                "llm_model": "alpha",
                "llm_intents": "rules",
                "models": [
                    ModelConfig(
                        id="beta",
                        name="Beta 70B",
                        backend="openai",
                        base_url=f"{b.url}/v1",
                        model="beta-70b-instruct",
                        api_key_env="BETA_TEST_KEY",
                    ),
                    ModelConfig(id="templates", name="Templates only", backend="builtin"),
                ],
            }
        )
        app.state.assistant = build_assistant(configured)
        yield alpha, beta


def _replies(detail: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(m["content"], m["model"]) for m in detail["messages"] if m["role"] == "assistant"]


async def test_models_are_listed_chosen_changed_and_recorded(client, two_models, sessionmaker):
    alpha, beta = two_models
    listed = (await client.get("/api/models")).json()["models"]
    assert [(m["id"], m["name"], m["backend"], m["default"]) for m in listed] == [
        ("alpha", "alpha", "openai", True),
        ("beta", "Beta 70B", "openai", False),
        ("templates", "Templates only", "builtin", False),
    ]
    me = await register(client)

    # A new conversation with `beta`: beta answers, under its own upstream name and key.
    body = {"messages": [{"role": "user", "content": "Hello there"}], "model": "beta"}
    r = await client.post("/api/chat", json=body, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["reply"] == "Beta answers."
    sid = r.json()["sessionId"]
    (sent,) = beta.requests
    assert sent.body["model"] == "beta-70b-instruct"
    assert sent.headers["authorization"] == "Bearer sk-beta"
    assert alpha.requests == []  # not even for the title: the conversation's model writes it

    # The conversation keeps it without being told again.
    assert (await chat(client, me, "And then?", session_id=sid)).json()["reply"] == (
        "Beta answers."
    )
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert detail["model"] == "beta"

    # Changed later: the next reply is alpha's; earlier replies keep their model.
    r = await client.patch(f"/api/sessions/{sid}", json={"model": "alpha"}, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "alpha"
    assert (await chat(client, me, "Once more", session_id=sid)).json()["reply"] == (
        "Alpha answers."
    )
    # `model` on a message to an existing conversation switches it too.
    body = {"messages": [{"role": "user", "content": "Last"}], "sessionId": sid, "model": "beta"}
    assert (await client.post("/api/chat", json=body, headers=me)).json()["reply"] == (
        "Beta answers."
    )
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert detail["model"] == "beta"
    assert _replies(detail) == [
        ("Beta answers.", "beta"),
        ("Beta answers.", "beta"),
        ("Alpha answers.", "alpha"),
        ("Beta answers.", "beta"),
    ]
    assert all(m["model"] is None for m in detail["messages"] if m["role"] == "user")

    # The JSON export names the model of every reply.
    exported = (await client.get(f"/api/sessions/{sid}/export", headers=me)).json()
    messages = exported["conversation"]["messages"]
    assert [m["model"] for m in messages] == [
        None,
        "beta",
        None,
        "beta",
        None,
        "alpha",
        None,
        "beta",
    ]
    assert [m["metadata"].get("model") for m in messages] == [m["model"] for m in messages]

    # A conversation that chose nothing has the default model.
    other = (await chat(client, me, "Hi")).json()
    assert other["reply"] == "Alpha answers."
    detail = (await client.get(f"/api/sessions/{other['sessionId']}", headers=me)).json()
    assert detail["model"] is None
    assert _replies(detail) == [("Alpha answers.", "alpha")]


async def test_an_unknown_model_is_refused_and_nothing_is_stored(client, two_models, sessionmaker):
    me = await register(client)
    body = {"messages": [{"role": "user", "content": "Hello"}], "model": "gpt-9"}
    r = await client.post("/api/chat", json=body, headers=me)
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_model"
    async with sessionmaker() as s:
        stored = (await s.execute(sa.text("SELECT count(*) FROM chat_message"))).scalar_one()
    assert stored == 0
    sid = (await chat(client, me, "Hello")).json()["sessionId"]
    r = await client.patch(f"/api/sessions/{sid}", json={"model": "gpt-9"}, headers=me)
    assert r.status_code == 422 and r.json()["code"] == "unknown_model"
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert detail["model"] is None


async def test_a_model_no_longer_configured_falls_back_to_the_default(
    client, two_models, sessionmaker
):
    me = await register(client)
    body = {"messages": [{"role": "user", "content": "Hello"}], "model": "templates"}
    sid = (await client.post("/api/chat", json=body, headers=me)).json()["sessionId"]
    async with sessionmaker() as s:
        await s.execute(
            sa.text("UPDATE chat_session SET model = 'retired' WHERE id = :id"), {"id": sid}
        )
        await s.commit()
    r = await chat(client, me, "Still there?", session_id=sid)
    assert r.json()["reply"] == "Alpha answers."
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert detail["model"] == "retired"
    assert _replies(detail)[-1] == ("Alpha answers.", "alpha")
    assert _replies(detail)[0][1] == "templates"


async def test_the_admin_view_lists_the_models_and_users_see_no_settings(
    client, two_models, sessionmaker
):
    admin = await register(client, "root@example.com")
    async with sessionmaker() as s:
        await s.execute(sa.text("UPDATE app_user SET is_superuser = true"))
        await s.commit()
    view = (await client.get("/api/admin/assistant", headers=admin)).json()
    assert [(m["id"], m["backend"]) for m in view["models"]] == [
        ("alpha", "openai"),
        ("beta", "openai"),
        ("templates", "builtin"),
    ]
    assert view["settings"]["MODELS"] == "beta, templates"
    public = (await client.get("/api/models")).text
    assert "MODELS" not in public and "BETA_TEST_KEY" not in public and "base_url" not in public
