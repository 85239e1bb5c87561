"""Going on with a conversation in a real Chromium: after a model error, after a server crash
in the middle of a reply, and on a new device."""

from __future__ import annotations

import re
import time
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


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ("connection_refused", "The model could not be reached."),
        ("timeout", "The model timed out."),
        ("rejected", "The model refused the request."),
    ],
)
def test_a_model_error_says_what_happened_and_retry_answers(
    new_page, live_server, use_assistant, failure, said
):
    assistant = use_assistant(
        RecordingAssistant(fail=AssistantError("The model failed", failure=failure))
    )
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    box = p.get_by_label("Message", exact=True)
    box.fill("Are you there?")
    box.press("Enter")

    failed = p.locator("#messages .msg-failed")
    expect(failed.locator("strong")).to_have_text(said)
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


def test_a_notice_about_the_last_conversation_goes_when_a_new_one_starts(new_page, live_server):
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    page.say("Plan the picnic")
    row = page.history("Active").filter(has_text="Plan the picnic")
    row.get_by_role("button", name="More", exact=False).click()
    row.get_by_role("button", name="Archive", exact=True).click()
    notice = p.locator("#chat-notice")
    expect(notice).to_contain_text("That conversation is archived now")
    expect(p.locator("#chat-heading")).to_have_text("New conversation")
    # One click to where it went.
    notice.get_by_role("button", name="Open it in History").click()
    expect(p.get_by_role("tab", name="Archived", exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    expect(p.locator("#history-list li.row")).to_have_text([re.compile("Plan the picnic")])

    page.say("Write a haiku about rain")
    expect(p.locator("#chat-heading")).to_have_text("Write a haiku about rain")
    expect(notice).to_be_hidden()
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["Write a haiku about rain"])


def test_a_reload_shows_the_conversation_without_the_empty_chat_first(new_page, live_server):
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    page.say("Plan the picnic")
    # Every frame, whether the empty chat's suggestions were on screen.
    p.add_init_script(
        """(() => {
            window.emptySeen = false;
            const look = () => {
                const empty = document.getElementById("empty-chat");
                const workspace = document.getElementById("workspace");
                if (empty && workspace && !workspace.hidden && !empty.hidden) {
                    window.emptySeen = true;
                }
                requestAnimationFrame(look);
            };
            requestAnimationFrame(look);
        })()"""
    )

    def slowly(route: Any) -> None:
        time.sleep(0.6)  # opening the conversation takes a while
        route.continue_()

    p.route(re.compile(r"/api/sessions/[^/?]+\?drafts=true$"), slowly)
    p.reload()
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["Plan the picnic"])
    page.wait_for_reply()
    assert p.evaluate("window.emptySeen") is False
    p.unroute(re.compile(r"/api/sessions/[^/?]+\?drafts=true$"))

    # A new conversation shows them, at once.
    p.get_by_role("button", name="New conversation").click()
    expect(p.locator("#empty-chat")).to_be_visible()
    expect(p.locator("#suggestions button").first).to_be_visible()


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


def test_tags_with_emoji_are_saved_and_a_refusal_keeps_the_dialog_open(new_page, live_server, user):
    user.say("Weekend plans")
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    rows = page.history("Active")
    row = rows.filter(has_text="Weekend plans")
    row.get_by_role("button", name="More", exact=False).click()
    row.get_by_role("button", name="Edit tags…", exact=True).click()
    dialog = p.locator("#tags-dialog")
    field = dialog.get_by_label("Tags, separated by commas")

    too_many = ", ".join(f"t{n}" for n in range(11))
    field.fill(too_many)
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator("#tags-error")).to_contain_text("at most 10 tags")
    expect(dialog).to_be_visible()
    expect(field).to_have_value(too_many)
    expect(field).to_be_focused()

    field.fill("🎉 party, 👩‍💻 work")
    field.press("Enter")
    expect(dialog).to_be_hidden()
    expect(row.locator(".row-tag")).to_have_text(["🎉 party", "👩‍💻 work"])
    expect(
        p.locator("#tag-filter").get_by_role("button", name="🎉 party, 1 conversation")
    ).to_be_visible()


def test_news_that_went_well_is_not_said_in_red(new_page, live_server):
    page = new_page(viewport=DESKTOP).open().sign_up(live_server.new_email())
    p = page.page
    p.get_by_role("button", name="Sign out").click()
    said = p.locator("#auth-error")
    expect(said).to_have_text("You are signed out.")
    expect(said).to_have_attribute("data-tone", "ok")
    signed_out = said.evaluate("e => getComputedStyle(e).color")
    p.get_by_label("Email").fill("nobody@example.com")
    p.get_by_label("Password").fill("not the password")
    p.get_by_role("button", name="Sign in").click()
    expect(said).to_have_text("Wrong email or password.")
    assert said.evaluate("e => getComputedStyle(e).color") != signed_out


def test_opening_a_conversation_is_one_request(new_page, live_server, user):
    sid = user.say("Create a Facebook post about Diwali")
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    expect(p.locator("#messages .draft-card")).to_have_count(1)
    asked: list[str] = []
    p.on(
        "request",
        lambda r: asked.append(r.url) if f"/api/sessions/{sid}" in r.url else None,
    )
    p.reload()
    expect(p.locator("#messages .draft-card .badge")).to_have_text("Waiting for you")
    expect(p.locator("#messages .msg")).to_have_count(2)
    # Opening is the first request, whole (messages and drafts); nothing else reads the
    # conversation but, once the live event stream is connected, the catch-up that asks
    # only for what came after the last message shown (it may or may not have run yet).
    assert asked[0].endswith(f"/api/sessions/{sid}?drafts=true"), asked
    assert all("after_seq=" in url for url in asked[1:]), asked
    assert not any(url.endswith("/drafts") for url in asked), asked
