"""The "Temporary chat" switch: offered for a new conversation, the banner while one is
open, and the conversation in no History list."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import LiveServer, _settings, running_server

pytestmark = pytest.mark.browser


def banner_text(ttl_words: str) -> str:
    return f"Temporary chat: not saved to history, deleted {ttl_words} after the last message"


def test_the_switch_starts_a_temporary_chat_with_its_banner(live_server, new_page):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    switch = p.get_by_role("switch", name="Temporary chat")
    banner = p.locator("#temporary-banner")
    expect(switch).to_be_visible()
    expect(switch).not_to_be_checked()
    expect(banner).to_be_hidden()

    switch.check()
    expect(banner).to_be_visible()
    # The shared server's SESSION_TTL_SECONDS is 600 (tests/web/conftest.py).
    assert live_server.settings.session_ttl_seconds == 600
    expect(banner).to_have_text(banner_text("10 minutes"))
    page.say("A secret plan")
    # Open now: the banner stays, the switch is for new conversations only.
    expect(banner).to_be_visible()
    expect(switch).to_be_hidden()
    expect(p.locator("#share-chat")).to_be_hidden()  # a temporary chat is not shared
    temp = page.session_id()
    assert temp

    # Reopened by its id (a reload), it is still marked as temporary.
    p.reload()
    expect(p.locator("#messages .msg-assistant")).to_have_count(1)
    expect(banner).to_be_visible()

    # Not in History.
    expect(page.history("Active")).to_have_count(0)

    # A new conversation: the switch is back, off; a regular chat shows no banner.
    p.get_by_role("button", name="New conversation").click()
    expect(switch).to_be_visible()
    expect(switch).not_to_be_checked()
    expect(banner).to_be_hidden()
    page.say("A plan to keep")
    expect(banner).to_be_hidden()
    expect(p.locator("#share-chat")).to_be_visible()
    expect(page.history("Active")).to_have_count(1)


@pytest.fixture(params=[(7200, "2 hours"), (5400, "1 hour 30 minutes")], ids=["2h", "90min"])
def ttl_server(request, live_server: LiveServer, tmp_path: Path):
    """A second server on the same database with another SESSION_TTL_SECONDS, and the
    words the banner must say for it."""
    seconds, words = request.param
    assert live_server.settings.database_url
    settings = _settings(live_server.settings.database_url, tmp_path, session_ttl_seconds=seconds)
    with running_server(settings, sweeper=False, clock=live_server.clock) as live:
        yield live, words


def test_the_banner_says_the_servers_own_ttl(ttl_server, new_page):
    server, words = ttl_server
    page = new_page(server=server).open().sign_up(server.new_email())
    p = page.page
    banner = p.locator("#temporary-banner")
    p.get_by_role("switch", name="Temporary chat").check()
    expect(banner).to_be_visible()
    expect(banner).to_have_text(banner_text(words))
    page.say("A secret plan")
    expect(banner).to_have_text(banner_text(words))
    # After a reload (the conversation reopened by its id) it says the same.
    p.reload()
    expect(p.locator("#messages .msg-assistant")).to_have_count(1)
    expect(banner).to_be_visible()
    expect(banner).to_have_text(banner_text(words))
