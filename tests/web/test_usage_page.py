"""Token budgets on the page: what is left, and a refusal that says until when."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.usage.conftest import MeteredAssistant
from tests.web.conftest import LiveServer, _settings, running_server

pytestmark = pytest.mark.browser


@pytest.fixture
def budget_server(live_server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    """A second server on the same database: 150 tokens a day, 100 tokens a reply."""
    assert live_server.settings.database_url
    settings = _settings(live_server.settings.database_url, tmp_path, quota_tokens_per_day=150)
    with running_server(settings, sweeper=False, clock=live_server.clock) as live:
        live.app.state.assistant = MeteredAssistant()
        yield live


# The server first, so its pages close before it stops.
def test_tokens_left_are_shown_and_a_used_up_budget_says_when_it_resets(budget_server, new_page):
    page = new_page(server=budget_server).open().sign_up(budget_server.new_email())
    p = page.page
    quota = p.locator("#quota")
    expect(quota).to_contain_text("150 tokens left today")
    page.say("Hello")
    expect(quota).to_contain_text("50 tokens left today")
    page.say("Hello again")  # 100 used: under 150, so it is answered
    expect(quota).to_contain_text("0 tokens left today")

    box = p.get_by_label("Message", exact=True)
    box.fill("One more, please")
    box.press("Enter")
    expect(p.locator("#chat-error")).to_contain_text("used today's token budget")
    expect(p.locator("#chat-error")).to_contain_text("you can send again from")
    expect(p.get_by_role("button", name="Send")).to_be_disabled()
    expect(box).to_have_value("One more, please")
    expect(p.locator("#messages .msg-user")).to_have_count(2)
