"""Streamed replies and live updates in a real Chromium: text that grows, Stop, a reload in
the middle of a reply, and two devices of one user seeing each other's changes."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import expect

from app.assistant.base import ReplyOutput, TextAssistant, TurnInput, Usage

pytestmark = pytest.mark.browser

WORDS = ("Alpha ", "beta ", "gamma ", "<b>delta</b> ", "omega")
FULL_REPLY = "".join(WORDS)


@dataclass
class PacedAssistant(TextAssistant):
    """Writes `words` one by one, `delay` seconds apart, then reports token usage.

    `hurry` (a thread-safe event, set from the test) makes it write the rest at once. With
    `hold_last`, the last word waits for `release` (or `hurry`): the reply is still being
    written for as long as the test looks at it, however slow the machine."""

    name: str = "paced"
    words: tuple[str, ...] = WORDS
    delay: float = 0.5
    usage: Usage | None = None
    hurry: threading.Event = field(default_factory=threading.Event)
    hold_last: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        for i, word in enumerate(self.words):
            if self.hold_last and i == len(self.words) - 1:
                while not (self.release.is_set() or self.hurry.is_set()):
                    await asyncio.sleep(0.05)
            out.write(word)
            waited = 0.0
            while waited < self.delay and not self.hurry.is_set():
                await asyncio.sleep(0.05)
                waited += 0.05
        if self.usage is not None:
            out.add_usage(self.usage)


@pytest.fixture
def paced(use_assistant: Any) -> Iterator[Any]:
    """paced(**fields) -> a PacedAssistant answering this test's messages."""
    made: list[PacedAssistant] = []

    def make(**fields: Any) -> PacedAssistant:
        assistant = PacedAssistant(**fields)
        made.append(assistant)
        use_assistant(assistant)
        return assistant

    yield make
    for assistant in made:
        assistant.hurry.set()  # nothing left writing when the next test starts


def send(page: Any, text: str) -> None:
    box = page.page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def test_a_reply_streams_in_as_plain_text_and_is_announced_once(new_page, live_server, paced):
    assistant = paced(usage=Usage(prompt_tokens=1200, completion_tokens=34), hold_last=True)
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    keys: list[str | None] = []
    p.on(
        "request",
        lambda r: (
            keys.append(r.headers.get("idempotency-key"))
            if r.method == "POST" and r.url.endswith("/api/chat")
            else None
        ),
    )

    send(page, "Count to five, slowly")
    streaming = p.locator("#messages .msg-streaming .msg-text")
    expect(streaming).to_contain_text("beta")
    # Part of the reply is on screen while the rest is still being written.
    assert "omega" not in streaming.inner_text()
    expect(p.get_by_role("button", name="Stop")).to_be_visible()
    expect(p.get_by_role("button", name="Send")).to_be_hidden()
    # The log waits: a screen reader hears the reply once, when it is complete.
    expect(p.locator("#messages")).to_have_attribute("aria-busy", "true")
    expect(streaming).to_have_attribute("dir", "auto")

    assistant.release.set()
    page.wait_for_reply()
    reply = p.locator("#messages .msg-assistant .msg-text")
    expect(reply).to_have_count(1)
    expect(reply).to_have_text(FULL_REPLY)  # markup from the model is text, not HTML
    assert p.locator("#messages b").count() == 0
    expect(reply).to_have_attribute("dir", "auto")
    expect(p.locator("#messages .msg-user .msg-text")).to_have_attribute("dir", "auto")
    expect(p.get_by_role("button", name="Send")).to_be_visible()
    expect(p.get_by_role("button", name="Stop")).to_be_hidden()
    expect(p.locator("#chat-usage")).to_have_text("1,234 tokens used")
    expect(p.locator("#chat-usage")).to_have_attribute("title", re.compile("pieces of words"))

    page.say("And again")
    expect(p.locator("#chat-usage")).to_have_text("2,468 tokens used")
    assert len(keys) == 2 and all(keys) and keys[0] != keys[1]  # a fresh key per message


def test_a_dropped_send_is_retried_with_the_same_key_and_saved_once(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    keys: list[str | None] = []

    def drop_the_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the server gets it and answers; the answer is lost on the way
            route.abort("connectionreset")
        else:
            route.continue_()

    p.route("**/api/chat", drop_the_first_answer)
    page.say("Hello through a flaky network")
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    expect(p.locator("#messages .msg-user")).to_have_count(1)
    stored = p.evaluate(
        "async (id) => (await (await fetch('/api/sessions/' + id)).json()).messages.length",
        page.session_id(),
    )
    assert stored == 2  # one message and one reply, not two turns
    # Chromium logs the connection this test cut; nothing else may be logged.
    page.console_errors[:] = [e for e in page.console_errors if "ERR_CONNECTION_RESET" not in e]


def test_stop_ends_the_reply_and_keeps_what_was_written(new_page, live_server, paced):
    paced(words=tuple(f"word{n} " for n in range(1, 21)), delay=1.0, hold_last=True)
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    send(page, "Write something long")
    streaming = p.locator("#messages .msg-streaming .msg-text")
    expect(streaming).to_contain_text("word1")
    p.get_by_role("button", name="Stop").click()

    page.wait_for_reply()
    expect(p.get_by_label("Message", exact=True)).to_be_focused()  # ready for the next
    reply = p.locator("#messages .msg-assistant").last
    expect(reply).to_have_class(re.compile(r"\bmsg-stopped\b"))
    expect(reply.locator(".msg-note")).to_have_text("Stopped before the end")
    text = reply.locator(".msg-text").inner_text()
    assert text.startswith("word1") and "word20" not in text
    expect(p.get_by_role("button", name="Send")).to_be_enabled()
    stored = p.evaluate(
        "async (id) => (await (await fetch('/api/sessions/' + id)).json()).messages",
        page.session_id(),
    )
    assert [m["role"] for m in stored] == ["user", "assistant"]
    assert stored[1]["content"].strip() == text.strip()
    assert stored[1]["stopped"] is True
    # The note survives a reload: the server remembers the reply was stopped.
    p.reload()
    again = p.locator("#messages .msg-assistant").last
    expect(again.locator(".msg-note")).to_have_text("Stopped before the end")


def test_a_reload_in_the_middle_of_a_reply_resumes_it(new_page, live_server, paced):
    assistant = paced(delay=0.8, hold_last=True)
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    send(page, "Tell me a slow story")
    expect(p.locator("#messages .msg-streaming .msg-text")).to_contain_text("Alpha")

    p.reload()
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["Tell me a slow story"])
    # The reply goes on growing on the reloaded page, from its first word.
    streaming = p.locator("#messages .msg-streaming .msg-text")
    expect(streaming).to_contain_text("Alpha")
    assert "omega" not in streaming.inner_text()
    expect(p.get_by_role("button", name="Stop")).to_be_visible()
    assistant.release.set()
    page.wait_for_reply()
    expect(p.locator("#messages .msg-assistant .msg-text")).to_have_text([FULL_REPLY])


def test_two_devices_of_one_user_see_each_others_messages_live(new_page, live_server, paced):
    email = live_server.new_email()
    laptop = new_page().open().sign_up(email)
    laptop.say("Plan the team offsite")
    title = "Plan the team offsite"

    # A second device opens the most recent active conversation, not an empty one.
    phone = new_page().open().sign_in(email)
    expect(phone.page.locator("#chat-heading")).to_have_text(title)
    expect(phone.page.locator("#messages .msg-user .msg-text")).to_have_text([title])
    assert phone.session_id() == laptop.session_id()

    assistant = paced(delay=0.8, hold_last=True)
    send(phone, "Add a boat trip")
    # The laptop shows the phone's message, and the reply as it is written, unasked.
    lp = laptop.page
    expect(lp.locator("#messages .msg-user .msg-text")).to_have_text([title, "Add a boat trip"])
    streaming = lp.locator("#messages .msg-streaming .msg-text")
    expect(streaming).to_contain_text("Alpha")
    assert "omega" not in streaming.inner_text()
    assistant.release.set()
    laptop.wait_for_reply()
    expect(lp.locator("#messages .msg-assistant .msg-text").last).to_have_text(FULL_REPLY)
    expect(lp.locator("#messages .msg")).to_have_count(4)
    phone.wait_for_reply()
    expect(lp.locator("#history-list li.row").first).to_contain_text("4 messages")

    laptop.say("And a dinner")
    expect(phone.page.locator("#messages .msg-user .msg-text")).to_have_text(
        [title, "Add a boat trip", "And a dinner"]
    )
    expect(phone.page.locator("#messages .msg")).to_have_count(6)


def test_a_conversation_deleted_on_another_device_is_marked(new_page, live_server):
    email = live_server.new_email()
    laptop = new_page().open().sign_up(email)
    laptop.say("Ideas for the garden")
    phone = new_page().open().sign_in(email)
    expect(phone.page.locator("#messages .msg-user")).to_have_count(1)

    rows = phone.history("Active")
    rows.first.get_by_role("button", name="More", exact=False).click()
    rows.first.get_by_role("button", name="Delete", exact=True).click()  # to the trash
    expect(rows).to_have_count(0)

    lp = laptop.page
    expect(lp.locator("#chat-notice")).to_contain_text("deleted on another device")
    expect(lp.get_by_label("Message", exact=True)).to_be_disabled()
    expect(lp.get_by_role("button", name="Send")).to_be_disabled()
    expect(lp.locator("#history-list li.row")).to_have_count(0)

    lp.get_by_role("button", name="New conversation").click()
    expect(lp.get_by_label("Message", exact=True)).to_be_enabled()
    laptop.say("A fresh start")
    expect(lp.locator("#messages .msg-user .msg-text")).to_have_text(["A fresh start"])


def test_undo_on_another_device_brings_the_conversation_back(new_page, live_server):
    email = live_server.new_email()
    laptop = new_page().open().sign_up(email)
    laptop.say("Ideas for the balcony")
    phone = new_page().open().sign_in(email)
    expect(phone.page.locator("#messages .msg-user")).to_have_count(1)

    rows = phone.history("Active")
    rows.first.get_by_role("button", name="More", exact=False).click()
    rows.first.get_by_role("button", name="Delete", exact=True).click()
    lp = laptop.page
    box = lp.get_by_label("Message", exact=True)
    expect(lp.locator("#chat-notice")).to_contain_text("deleted on another device")
    expect(box).to_be_disabled()

    toast = phone.page.get_by_role("status").filter(has_text="Moved to trash.")
    toast.get_by_role("button", name="Undo").click()
    expect(rows).to_have_count(1)

    # The laptop hears of it: the conversation is back, as it was, ready to write.
    expect(lp.locator("#chat-notice")).to_be_hidden()
    expect(box).to_be_enabled()
    expect(lp.get_by_role("button", name="Send")).to_be_enabled()
    expect(lp.locator("#messages .msg-user .msg-text")).to_have_text(["Ideas for the balcony"])
    laptop.say("Add some herbs")
    expect(lp.locator("#messages .msg-user")).to_have_count(2)
    expect(phone.page.locator("#messages .msg-user")).to_have_count(2)


def test_a_draft_posted_on_another_device_shows_as_posted(new_page, live_server):
    email = live_server.new_email()
    laptop = new_page().open().sign_up(email)
    laptop.say("Create a Facebook post about Diwali with image")
    phone = new_page().open().sign_in(email)
    phone_card = phone.page.locator("#messages .draft-card").last
    expect(phone_card.get_by_role("button", name="Post")).to_be_visible()

    laptop.page.locator("#messages .draft-card").last.get_by_role("button", name="Post").click()
    laptop.wait_for_reply()
    expect(phone_card.locator(".badge")).to_have_text("Posted")
    expect(phone_card.get_by_role("button", name="Post")).to_have_count(0)
    expect(phone.page.locator("#messages .msg-user .msg-text").last).to_have_text("post it")


def test_expiry_marks_the_open_conversation_and_its_draft_stays_postable(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Create a LinkedIn post about hiring engineers")
    session_id = page.session_id()
    card = p.locator("#messages .draft-card").last
    expect(card.get_by_role("button", name="Post")).to_be_visible()

    live_server.expire_sessions()  # the sweeper archives it and says so to every device
    expect(p.locator("#chat-notice")).to_contain_text("archived", timeout=20_000)
    expect(card.locator(".badge")).to_have_text("Waiting for you")

    card.get_by_role("button", name="Post").click()  # continues it: restored, then posted
    page.wait_for_reply()
    expect(p.locator("#messages .msg-assistant").last).to_contain_text("published")
    expect(p.locator("#chat-notice")).to_be_hidden()
    assert page.session_id() == session_id
