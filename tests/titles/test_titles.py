"""Titles written by the model after a conversation's first exchange: after the turn has
closed, never over a title the user set, and not at all without a model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.assistant.builtin import DraftingAssistant, TemplateWriter
from app.assistant.factory import build_assistant
from app.assistant.openai_compat import TITLE_MAX_TOKENS, TITLE_PROMPT
from app.core.config import Settings
from app.drafts.publisher import LocalPublisher
from app.imaging.images import CardImageGenerator
from app.titles.service import tidy_title
from tests.conftest import chat, register
from tests.fakemodel import FakeModel, Planned, serve_model

pytestmark = pytest.mark.storage

QUESTION = "How often should I feed my sourdough starter?"


class TitlingWriter(TemplateWriter):
    """The templates, plus titles that wait until the test lets them go."""

    model_id = "titler"

    def __init__(self, title: str) -> None:
        self.title = title
        self.release = asyncio.Event()
        self.asked: list[tuple[str, str]] = []

    async def write_title(self, *, message: str, reply: str) -> str:
        self.asked.append((message, reply))
        await self.release.wait()
        return self.title


def _titling(app: Any, title: str) -> TitlingWriter:
    writer = TitlingWriter(title)
    app.state.assistant = DraftingAssistant(
        writer=writer, images=CardImageGenerator(), publisher=LocalPublisher()
    )
    return writer


async def _title_work_done(app: Any) -> None:
    """Waits until the work that follows turns (titles) has ended."""
    runner = app.state.turns
    while runner._after:
        await asyncio.wait(set(runner._after))


async def _title(client, headers, sid: str) -> str:
    return (await client.get(f"/api/sessions/{sid}", headers=headers)).json()["title"]


async def test_the_title_is_written_after_the_turn_closed(app, client):
    writer = _titling(app, '"Feeding a sourdough starter."')
    me = await register(client)
    r = await chat(client, me, QUESTION)
    # The turn answered and closed while the title was still being written.
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    assert await _title(client, me, sid) == QUESTION
    while not writer.asked:  # the title's task starts once the turn has closed
        await asyncio.sleep(0.01)
    assert writer.asked == [(QUESTION, r.json()["reply"])]
    writer.release.set()
    await _title_work_done(app)
    assert await _title(client, me, sid) == "Feeding a sourdough starter"

    # Only the first exchange: the next reply leaves the title alone.
    await chat(client, me, "And in winter?", session_id=sid)
    await _title_work_done(app)
    assert len(writer.asked) == 1
    assert await _title(client, me, sid) == "Feeding a sourdough starter"


async def test_a_title_the_user_set_is_never_overwritten(app, client):
    writer = _titling(app, "Sourdough feeding")
    me = await register(client)
    sid = (await chat(client, me, QUESTION)).json()["sessionId"]
    r = await client.patch(f"/api/sessions/{sid}", json={"title": "My bread"}, headers=me)
    assert r.status_code == 200
    writer.release.set()
    await _title_work_done(app)
    assert writer.asked  # the model was asked, and its title was not kept
    assert await _title(client, me, sid) == "My bread"


async def test_without_a_model_the_first_message_stays_the_title(app, client):
    me = await register(client)  # the tests' assistant: the built-in templates
    sid = (await chat(client, me, QUESTION)).json()["sessionId"]
    assert not app.state.turns._after  # nothing was started after the turn
    assert await _title(client, me, sid) == QUESTION


async def test_the_model_server_writes_the_title_in_the_users_language(
    app, client, settings: Settings
):
    model = FakeModel(
        Planned(text="Cada día a temperatura ambiente."),
        title=Planned(text="Título: «Alimentar la masa madre»"),
    )
    with serve_model(model) as server:
        app.state.assistant = build_assistant(
            settings.model_copy(
                update={
                    "assistant_backend": "openai",
                    "llm_base_url": f"{server.url}/v1",
                    "llm_model": "test-model",
                    "llm_intents": "rules",
                }
            )
        )
        me = await register(client)
        question = "¿Cada cuánto alimento mi masa madre?"
        r = await chat(client, me, question)
        assert r.json()["reply"] == "Cada día a temperatura ambiente."
        await _title_work_done(app)
    assert await _title(client, me, r.json()["sessionId"]) == "Alimentar la masa madre"
    (turn,), (title,) = model.requests, model.title_requests
    assert turn.last_user == question
    assert title.messages[0] == {"role": "system", "content": TITLE_PROMPT}
    assert question in title.last_user and "Cada día a temperatura ambiente." in title.last_user
    assert title.body["max_tokens"] == TITLE_MAX_TOKENS


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("Sourdough feeding", "Sourdough feeding"),
        ('"Trip to Lisbon."\nSome more words', "Trip to Lisbon"),
        ("**Title:** Plan de voyage", "Plan de voyage"),
        ("  ", None),
        ("Here is an answer that goes on and on for far too many words to be a title", None),
    ],
)
def test_what_the_model_answers_is_tidied_into_a_title(raw, tidy):
    assert tidy_title(raw) == tidy
