"""`/v1` completions as chat turns, in process: titled by the model like a conversation of
the page, and holding no database connection while the model writes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.conftest import register
from tests.fakemodel import FakeModel, Planned, serve_model

pytestmark = pytest.mark.storage

MODEL = "test-model"
REPLY = "Kestrels hover over open fields."
TITLE = "Kestrels and where they hunt"
THINKING_SECONDS = 5.0


@pytest.fixture
def model() -> Iterator[tuple[FakeModel, str]]:
    fake = FakeModel(default=Planned(text=REPLY), title=Planned(text=f'"{TITLE}."'))
    with serve_model(fake) as server:
        yield fake, server.url


@pytest.fixture
def one_connection() -> bool:
    """Whether the app has a single pooled connection (a test parametrizes it)."""
    return False


@pytest.fixture
def settings(settings: Settings, model: tuple[FakeModel, str], one_connection: bool) -> Settings:
    _, url = model
    update: dict[str, Any] = {
        "assistant_backend": "openai",
        "llm_base_url": f"{url}/v1",
        "llm_model": MODEL,
        "llm_intents": "rules",
        "llm_max_retries": 0,
    }
    if one_connection:
        # One pooled connection, a short wait for it, no checkpoint while a reply waits.
        update |= {
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 1.0,
            "turn_checkpoint_seconds": 60.0,
        }
    return settings.model_copy(update=update)


async def _after_turns(app: Any) -> None:
    """Waits until the work that follows turns (titles) has ended."""
    runner = app.state.turns
    while runner._after:
        await asyncio.wait(set(runner._after))


async def _key(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    me = await register(client)
    r = await client.post("/api/keys", json={"name": "editor"}, headers=me)
    assert r.status_code == 201, r.text
    return me, {"Authorization": f"Bearer {r.json()['key']}"}


async def _complete(client: httpx.AsyncClient, key: dict[str, str], messages: list) -> dict:
    r = await client.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": messages}, headers=key
    )
    assert r.status_code == 200, r.text
    return r.json()


async def _titles(client: httpx.AsyncClient, me: dict[str, str]) -> dict[str, str]:
    r = await client.get("/api/sessions", headers=me)
    assert r.status_code == 200, r.text
    return {s["id"]: s["title"] for s in r.json()["items"]}


async def test_a_new_conversation_from_a_client_is_titled_by_its_model_as_on_the_page(
    app, client, model
):
    fake, _ = model
    me, key = await _key(client)
    system = {"role": "system", "content": "You answer in one sentence."}
    question = {"role": "user", "content": "Where do kestrels hunt?"}
    answer = await _complete(client, key, [system, question])
    sid = answer["chatkeep"]["sessionId"]
    await _after_turns(app)
    assert (await _titles(client, me))[sid] == TITLE
    (asked,) = fake.title_requests
    assert question["content"] in asked.last_user and REPLY in asked.last_user

    # The conversation goes on: its title stays, and the model is not asked again.
    await _complete(
        client,
        key,
        [
            system,
            question,
            {"role": "assistant", "content": REPLY},
            {"role": "user", "content": "And at night?"},
        ],
    )
    await _after_turns(app)
    assert (await _titles(client, me))[sid] == TITLE
    assert len(fake.title_requests) == 1

    # A client that brings an exchange Chatkeep never saw starts a conversation whose
    # first exchange was not answered here: the first message stays its title.
    brought = await _complete(
        client,
        key,
        [
            {"role": "user", "content": "What is a merlin?"},
            {"role": "assistant", "content": "A small falcon."},
            {"role": "user", "content": "Is it fast?"},
        ],
    )
    await _after_turns(app)
    assert (await _titles(client, me))[brought["chatkeep"]["sessionId"]] == "What is a merlin?"
    assert len(fake.title_requests) == 1


@pytest.mark.parametrize("one_connection", [True])
async def test_completions_hold_no_connection_while_the_model_thinks(app, client, model):
    fake, _ = model
    fake.plan(
        Planned(text=REPLY, first_token_seconds=THINKING_SECONDS),
        Planned(text=REPLY, first_token_seconds=THINKING_SECONDS),
    )
    _, key = await _key(client)
    asked = [
        asyncio.create_task(
            client.post(
                "/v1/chat/completions",
                json={
                    "model": MODEL,
                    "messages": [{"role": "user", "content": f"Think hard, {name}."}],
                    "stream": stream,
                },
                headers=key,
            )
        )
        for name, stream in (("whole", False), ("streamed", True))
    ]
    deadline = asyncio.get_running_loop().time() + THINKING_SECONDS
    while len(fake.requests) < 2:
        assert asyncio.get_running_loop().time() < deadline, "the model was not asked twice"
        await asyncio.sleep(0.01)
    # Both replies are with the model, and the pool's one connection is free: another
    # request of the user gets it at once, and sees both questions stored.
    r = await client.get("/api/sessions", headers=key)
    assert r.status_code == 200, r.text
    assert sorted(s["title"] for s in r.json()["items"]) == [
        "Think hard, streamed.",
        "Think hard, whole.",
    ]
    assert not any(task.done() for task in asked), "the model answered too soon to tell"
    whole, streamed = await asyncio.gather(*asked)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"] == REPLY
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
