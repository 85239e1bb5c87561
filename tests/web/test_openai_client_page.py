"""An OpenAI client's exchange, through `/v1` with a key, shows up on the page live."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_an_exchange_through_v1_appears_in_the_history_and_opens(new_page, live_server, api):
    page = new_page().open().sign_up(live_server.new_email("v1"))
    p = page.page
    p.get_by_role("button", name="Settings").click()
    p.get_by_label("Name of the new key").fill("my editor")
    p.get_by_role("button", name="Create key").click()
    dialog = p.get_by_role("dialog", name="Your new API key")
    key = dialog.get_by_label("Key").input_value()
    dialog.get_by_role("button", name="Done").click()
    p.get_by_role("button", name="Back to my chats").click()
    rows = page.history()
    expect(rows).to_have_count(0)

    as_key = {"Authorization": f"Bearer {key}"}
    (model,) = [m["id"] for m in api.get("/v1/models", headers=as_key).json()["data"]]
    asked = {"role": "user", "content": "Hello from my editor"}
    r = api.post("/v1/chat/completions", json={"model": model, "messages": [asked]}, headers=as_key)
    assert r.status_code == 200, r.text
    reply = r.json()["choices"][0]["message"]["content"]

    # Listed without a reload, and opened like any conversation.
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Hello from my editor")
    expect(rows.first).to_contain_text("API · my editor")  # the key it came from
    rows.first.click()
    messages = p.locator("#messages > li")
    expect(messages).to_have_count(2)
    expect(messages.first).to_contain_text("Hello from my editor")
    expect(messages.last).to_contain_text(reply.split("\n")[0][:40])
