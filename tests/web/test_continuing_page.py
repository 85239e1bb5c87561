"""Going on with a conversation in a real Chromium: after a model error, after a server crash
in the middle of a reply, and on a new device."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from app.assistant.base import AssistantError
from tests.assistants import RecordingAssistant
from tests.web.test_history_actions import DESKTOP, Account, run_sql

pytestmark = pytest.mark.browser


@pytest.fixture
def user(live_server: Any) -> Any:
    made = Account(live_server)
    yield made
    made.close()


def test_a_model_error_says_what_happened_and_retry_answers(new_page, live_server, use_assistant):
    assistant = use_assistant(
        RecordingAssistant(fail=AssistantError("Connection refused", failure="connection_refused"))
    )
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    box = p.get_by_label("Message", exact=True)
    box.fill("Are you there?")
    box.press("Enter")

    failed = p.locator("#messages .msg-failed")
    expect(failed).to_contain_text("The model could not be reached.")
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["Are you there?"])
    expect(p.locator("#messages > li").last).to_have_class("msg msg-assistant msg-failed")

    assistant.fail = None
    failed.get_by_role("button", name="Retry").click()
    page.wait_for_reply()
    expect(p.locator("#messages .msg-failed")).to_have_count(0)
    expect(p.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["reply to Are you there?"]
    )
    expect(p.locator("#messages .msg-user")).to_have_count(1)
    expect(box).to_be_enabled()


def test_a_reply_interrupted_by_a_crash_shows_what_was_written_with_retry(
    new_page, live_server, use_assistant, user
):
    assistant = use_assistant(RecordingAssistant())
    sid = user.say("Tell me about tides")
    assistant.fail = AssistantError("gone")
    r = user.api.post(
        "/api/chat",
        json={"sessionId": sid, "messages": [{"role": "user", "content": "And the moon?"}]},
        headers=user.headers,
    )
    assert r.status_code == 502
    # As a server that crashed mid-reply leaves it: the turn still "generating", its
    # heartbeat long stopped, the reply saved as far as the last checkpoint went.
    run_sql(
        live_server,
        "UPDATE chat_turn SET status = 'generating', error = NULL, finished_at = NULL,"
        " heartbeat_at = now() - interval '1 hour', partial_reply = $1"
        " WHERE session_id = $2 AND user_seq = 3",
        "The moon **pulls** the water",
        sid,
    )
    assistant.fail = None

    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    failed = p.locator("#messages .msg-failed")
    expect(failed).to_contain_text("Interrupted")
    expect(failed.locator(".msg-text strong")).to_have_text("pulls")
    expect(p.locator("#messages .msg-user .msg-text").last).to_have_text("And the moon?")

    failed.get_by_role("button", name="Retry").click()
    page.wait_for_reply()
    expect(p.locator("#messages .msg-failed")).to_have_count(0)
    expect(p.locator("#messages .msg-assistant .msg-text").last).to_have_text(
        "reply to And the moon?"
    )
    p.reload()
    expect(p.locator("#messages .msg")).to_have_count(4)
    expect(p.locator("#messages .msg-failed")).to_have_count(0)


def test_a_new_device_opens_the_most_recent_conversation_not_the_pinned_one(
    new_page, live_server, user
):
    pinned, latest = user.start("Pinned long ago", "The latest talk")
    r = user.api.patch(f"/api/sessions/{pinned}", json={"pinned": True}, headers=user.headers)
    assert r.status_code == 200, r.text
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    expect(page.page.locator("#chat-heading")).to_have_text("The latest talk")
    assert page.session_id() == latest


def test_a_long_paste_is_counted_refused_over_the_limit_and_kept(new_page, live_server):
    limit = live_server.settings.max_message_chars
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    box = p.get_by_label("Message", exact=True)
    counter = p.locator("#char-count")
    expect(counter).to_be_hidden()

    too_long = "word " * ((limit + 50) // 5)
    box.fill(too_long)
    expect(counter).to_be_visible()
    expect(counter).to_contain_text("too many to send")
    expect(counter).to_have_attribute("data-over", "true")
    expect(p.get_by_role("button", name="Send")).to_be_disabled()
    box.press("Enter")
    expect(p.locator("#chat-error")).to_contain_text("longer than")
    expect(p.locator("#messages .msg")).to_have_count(0)
    assert box.input_value() == too_long  # never cut, never lost

    box.fill(too_long[: limit - 100])
    expect(counter).to_have_attribute("data-over", "false")
    expect(counter).to_contain_text(f"/ {limit:,} characters")
    expect(p.get_by_role("button", name="Send")).to_be_enabled()
    box.press("Enter")
    page.wait_for_reply()
    expect(p.locator("#messages .msg-user")).to_have_count(1)
    expect(counter).to_be_hidden()
    text = p.locator("#messages .msg-user .msg-text").first.text_content() or ""
    assert len(text) == limit - 100


def test_the_empty_chat_suggests_what_the_assistant_does(new_page, live_server, api):
    info = api.get("/api/assistant").json()
    assert info["maxMessageChars"] == live_server.settings.max_message_chars
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    buttons = p.locator("#empty-chat .suggestions button")
    expect(buttons).to_have_text(info["suggestions"])
    buttons.first.click()
    box = p.get_by_label("Message", exact=True)
    expect(box).to_have_value(info["suggestions"][0])
    expect(box).to_be_focused()
