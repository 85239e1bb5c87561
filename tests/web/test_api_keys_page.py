"""Settings → API keys in a real Chromium: create (the key shown once), list, revoke."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_create_copy_once_list_and_revoke_an_api_key(new_page, live_server, api):
    address = live_server.new_email("keys")
    page = new_page(permissions=["clipboard-read", "clipboard-write"]).open().sign_up(address)
    p = page.page
    p.get_by_role("button", name="Settings").click()
    expect(p.locator("#api-keys-empty")).to_be_visible()

    # A name that would be markup if the page built HTML from strings.
    name = '<img src=x onerror="window.hacked=1"> build bot'
    p.get_by_label("Name of the new key").fill(name)
    p.get_by_role("button", name="Create key").click()
    dialog = p.get_by_role("dialog", name="Your new API key")
    expect(dialog).to_be_visible()
    key = dialog.get_by_label("Key").input_value()
    assert key.startswith("ck_")
    dialog.get_by_role("button", name="Copy key").click()
    expect(dialog.locator("#api-key-status")).to_have_text("Key copied.")
    assert p.evaluate("navigator.clipboard.readText()") == key

    # The key works for a program.
    as_key = {"Authorization": f"Bearer {key}"}
    assert api.get("/users/me", headers=as_key).json()["email"] == address

    # Once the dialog is closed the key is gone from the page; the list shows its prefix.
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()
    assert key not in p.content()
    rows = p.locator("#api-keys > li")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(name)  # as text
    expect(rows.first).to_contain_text(key[:11])
    assert p.evaluate("window.hacked") is None
    expect(p.locator("#api-keys img")).to_have_count(0)
    # Listed when it was made, before its first use; opened again, Settings shows the use.
    expect(rows.first).to_contain_text("never used")
    p.get_by_role("button", name="Back to my chats").click()
    p.get_by_role("button", name="Settings").click()
    expect(rows.first).to_contain_text("last used")

    # Revoke: gone from the list, and refused from then on.
    p.get_by_role("button", name=f"Revoke {name}").click()
    expect(rows).to_have_count(0)
    expect(p.locator("#api-keys-empty")).to_be_visible()
    assert api.get("/users/me", headers=as_key).status_code == 401
