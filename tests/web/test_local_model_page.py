"""The page with the local model (the default of `make run`): it names the model, and a
question gets the real model's answer, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.assistant import local_model
from tests.conftest import IN_CI
from tests.web.conftest import LiveServer, _settings, running_server

pytestmark = [pytest.mark.browser, pytest.mark.process]


@pytest.fixture
def local_server(live_server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    if not local_model.available():
        message = "the local model is not installed (make install)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    assert live_server.settings.database_url
    settings = _settings(
        live_server.settings.database_url,
        tmp_path,
        assistant_backend="local",
        local_model_max_tokens=24,
        local_model_parallel=1,
    )
    with running_server(settings, sweeper=False, clock=live_server.clock) as live:
        yield live


def test_the_page_names_the_model_and_shows_its_answer(local_server, new_page):
    page = new_page(server=local_server).open().sign_up(local_server.new_email())
    p = page.page
    expect(p.locator("#assistant-model")).to_have_text(
        "Answers by SmolLM2 135M, running on this server"
    )
    page.say("What is the capital of France?")
    reply = page.last_reply()
    assert reply.strip()
    # Nothing an administrator configures is shown to the user.
    assert "ASSISTANT_BACKEND" not in p.content() and "LLM_" not in p.content()

    page.say("Create a Facebook post about Diwali")
    card = p.locator("#messages .draft-card").last  # the templates' draft, as before
    expect(card.locator("h3")).to_have_text("Facebook post · Diwali")
