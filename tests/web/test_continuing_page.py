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
