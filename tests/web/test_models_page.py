"""The model picker: a new conversation takes the model picked, the conversation keeps
it, and changing it on an open conversation changes who writes the next reply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from app.core.config import ModelConfig
from tests.fakemodel import FakeModel, Planned, serve_model
from tests.web.conftest import LiveServer, _settings, running_server

pytestmark = pytest.mark.browser


@pytest.fixture
def models_server(
    live_server: LiveServer, tmp_path: Path
) -> Iterator[tuple[LiveServer, FakeModel, FakeModel]]:
    alpha = FakeModel(default=Planned(text="Alpha answers."))
    beta = FakeModel(default=Planned(text="Beta answers."))
    assert live_server.settings.database_url
    with serve_model(alpha) as a, serve_model(beta) as b:
        settings = _settings(
            live_server.settings.database_url,
            tmp_path,
            assistant_backend="openai",
            llm_base_url=f"{a.url}/v1",
            llm_model="alpha",
            llm_intents="rules",
            models=[
                ModelConfig(id="beta", name="Beta 70B", backend="openai", base_url=f"{b.url}/v1")
            ],
        )
        with running_server(settings, sweeper=False, clock=live_server.clock) as live:
            yield live, alpha, beta


def _session_model(server: LiveServer, page, session_id: str) -> str | None:
    cookies = {c["name"]: c["value"] for c in page.page.context.cookies()}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=15) as api:
        detail = api.get(f"/api/sessions/{session_id}").json()
    return detail["model"]


def test_the_picker_chooses_and_changes_a_conversations_model(models_server, new_page):
    server, alpha, beta = models_server
    page = new_page(server=server).open().sign_up(server.new_email())
    p = page.page
    picker = p.get_by_label("Model")
    expect(picker).to_be_visible()
    expect(picker.locator("option")).to_have_text(["alpha", "Beta 70B"])
    expect(p.locator("#assistant-model")).to_have_text("Answers by alpha")

    # A new conversation with the model picked.
    picker.select_option(label="Beta 70B")
    expect(p.locator("#assistant-model")).to_have_text("Answers by Beta 70B")
    page.say("Hello")
    assert page.last_reply() == "Beta answers."
    assert len(beta.requests) == 1 and alpha.requests == []
    session_id = page.session_id()
    assert session_id and _session_model(server, page, session_id) == "beta"

    # The conversation keeps it, also on a new visit.
    p.reload()
    expect(p.locator("#messages .msg-assistant")).to_have_count(1)
    expect(picker).to_have_value("beta")

    # Changed on the open conversation: the next reply is the other model's.
    picker.select_option(label="alpha")
    expect(p.locator("#assistant-model")).to_have_text("Answers by alpha")
    page.say("And you?")
    assert page.last_reply() == "Alpha answers."
    assert _session_model(server, page, session_id) == "alpha"
    assert len(alpha.requests) == 1 and len(beta.requests) == 1
