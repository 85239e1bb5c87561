"""The share dialog in a real Chromium: make a link, copy it, open it signed out in another
browser, share again for newer messages, and revoke it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_shared_link_opens_signed_out_read_only_until_it_is_revoked(new_page, live_server):
    email = live_server.new_email("sharer")
    page = new_page(permissions=["clipboard-read", "clipboard-write"]).open().sign_up(email)
    p = page.page
    share_button = p.get_by_role("button", name="Share", exact=True)
    expect(share_button).to_be_hidden()  # nothing to share in a new, empty conversation
    page.say("Plan the <b>river</b> picnic")

    share_button.click()
    dialog = p.get_by_role("dialog", name="Share this conversation")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Create link")).to_be_enabled()
    dialog.get_by_label("The link works").select_option(label="For 7 days")
    dialog.get_by_role("button", name="Create link").click()
    url_box = dialog.get_by_label("Link", exact=True)
    expect(url_box).to_have_value(re.compile(re.escape(live_server.url) + r"/s/[\w-]{43}$"))
    url = url_box.input_value()
    expect(dialog.locator("#share-status")).to_contain_text("Link created. It works until")

    dialog.get_by_role("button", name="Copy link").click()
    expect(dialog.locator("#share-status")).to_have_text(f"Link copied: {url}")
    assert p.evaluate("navigator.clipboard.readText()") == url

    # Someone else, signed out, in a browser of their own.
    visitor = new_page()
    v = visitor.page
    response = v.goto(url)
    assert response is not None and response.status == 200
    expect(v.get_by_role("heading", level=1)).to_have_text("Plan the <b>river</b> picnic")
    messages = v.locator(".shared-msg")
    expect(messages).to_have_count(2)
    expect(messages.first.locator(".shared-text")).to_have_text("Plan the <b>river</b> picnic")
    expect(v.locator("b")).to_have_count(0)  # shown as text, never as markup
    expect(v.locator("form, textarea, input, button, script")).to_have_count(0)
    assert email not in v.content()

    # A message after sharing shows only once shared again; the link stays the same.
    dialog.get_by_role("button", name="Close").click()
    page.say("And bring lemonade")
    v.reload()
    expect(messages).to_have_count(2)
    share_button.click()
    expect(dialog.get_by_label("Link", exact=True)).to_have_value(url)
    expect(dialog.get_by_label("The link works")).to_have_value("keep")  # its 7 days
    dialog.get_by_role("button", name="Update link").click()
    expect(dialog.locator("#share-status")).to_contain_text("Updated")
    expect(dialog.locator("#share-status")).to_contain_text("It works until")
    expect(dialog.get_by_label("Link", exact=True)).to_have_value(url)
    v.reload()
    expect(messages).to_have_count(4)
    expect(messages.nth(2).locator(".shared-text")).to_have_text("And bring lemonade")

    # Stopping asks first; keeping the link changes nothing.
    dialog.get_by_role("button", name="Stop sharing").click()
    expect(dialog.locator("#share-status")).to_contain_text("Stop sharing? The link stops working")
    dialog.get_by_role("button", name="Keep sharing").click()
    expect(dialog.get_by_role("button", name="Stop sharing")).to_be_focused()
    assert v.goto(url).status == 200
    dialog.get_by_role("button", name="Stop sharing").click()
    dialog.get_by_role("button", name="Yes, stop sharing").click()
    expect(dialog.locator("#share-done")).to_have_text("Sharing stopped: the link no longer opens.")
    done_color = dialog.locator("#share-done").evaluate("e => getComputedStyle(e).color")
    error_color = dialog.locator("#share-error").evaluate("e => getComputedStyle(e).color")
    assert done_color != error_color  # news that went well is not said in red
    expect(dialog.get_by_role("button", name="Create link")).to_be_visible()
    expect(dialog.get_by_label("Link", exact=True)).to_be_hidden()
    expect(dialog.get_by_role("button", name="Copy link")).to_be_hidden()
    response = v.goto(url)
    assert response is not None and response.status == 404
    expect(v.get_by_role("heading", level=1)).to_have_text("This link is not available")
    expect(v.locator(".shared-msg")).to_have_count(0)
    assert "lemonade" not in v.content()
