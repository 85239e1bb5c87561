"""A long conversation in a real Chromium: once the model has summarised its start, a quiet
divider shows above the first message it still reads in full."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from app.assistant.builtin import DraftingAssistant, TemplateWriter
from app.drafts.publisher import LocalPublisher
from app.imaging.images import CardImageGenerator
from tests.web.conftest import LiveServer, _settings, running_server
from tests.web.test_accessibility import assert_clean

pytestmark = pytest.mark.browser


class SummarisingWriter(TemplateWriter):
    """The templates, plus summaries (as a model would write them)."""

    async def write_summary(self, *, previous: str | None, messages: list[tuple[str, str]]) -> str:
        return "The user asked about apples and pears."


@pytest.fixture
def short_server(live_server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose model reads two messages of a conversation, and summarises."""
    assert live_server.settings.database_url
    settings = _settings(live_server.settings.database_url, tmp_path, context_max_messages=2)
    with running_server(settings, sweeper=False, clock=live_server.clock) as live:
        live.app.state.assistant = DraftingAssistant(
            writer=SummarisingWriter(), images=CardImageGenerator(), publisher=LocalPublisher()
        )
        yield live


def _divider(p: Any) -> Any:
    return p.locator("#messages > li.summary-divider")


def test_a_divider_marks_where_the_summary_ends(short_server, new_page):
    page = new_page(server=short_server).open().sign_up(short_server.new_email())
    p = page.page
    page.say("hello, what can you do?")
    expect(_divider(p)).to_have_count(0)
    page.say("thanks, and what else?")
    # The summary is written after the turn: it shows once the conversation is read again.
    deadline = time.monotonic() + 15
    while True:
        p.reload()
        expect(p.locator("#messages > li.msg")).to_have_count(4)
        if _divider(p).count() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    divider = _divider(p)
    expect(divider).to_have_count(1)
    expect(divider).to_have_text("Earlier messages summarised")
    # Above the first message still sent in full: the second question (seq 3).
    following = divider.locator("xpath=following-sibling::li[1]")
    expect(following).to_have_attribute("data-seq", "3")
    expect(following).to_contain_text("thanks, and what else?")
    assert_clean(p)
