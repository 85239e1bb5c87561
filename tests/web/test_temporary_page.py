"""The "Temporary chat" switch: offered for a new conversation, the banner while one is
open, and the conversation in no History list."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

BANNER = re.compile(r"Temporary chat: not saved to history, deleted 30 minutes after the last")


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
    expect(banner).to_have_text(BANNER)
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
