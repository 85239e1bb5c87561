"""Conversations as trees in a real Chromium: edit a message, regenerate a reply, move
between versions with the "2/3" switcher, retry a failed or stopped turn, and a second device that
follows the head."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import expect

from app.assistant.base import AssistantError, ReplyOutput, TextAssistant, TurnInput
from app.core.runtime import PROJECT_ROOT

pytestmark = pytest.mark.browser


@dataclass
class VersionedAssistant(TextAssistant):
    """Answers "Answer N to <message>", N counting every reply it was asked for, so each
    version reads differently. `fail_next` makes the next turn fail; with `hold`, a reply
    waits after its first word until `release` is set (it can be stopped there)."""

    name: str = "versioned"
    count: int = 0
    fail_next: bool = False
    hold: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        self.count += 1
        if self.fail_next:
            self.fail_next = False
            raise AssistantError("The model is down for a moment")
        out.write(f"Answer {self.count} ")
        if self.hold:
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        out.write(f"to {turn.message}")


@pytest.fixture
def versioned(use_assistant: Any) -> Iterator[VersionedAssistant]:
    assistant = use_assistant(VersionedAssistant())
    yield assistant
    assistant.release.set()  # nothing left writing when the next test starts


def send(page: Any, text: str) -> None:
    box = page.page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def texts(page: Any) -> list[str]:
    return [t.strip() for t in page.page.locator("#messages > li.msg .msg-text").all_inner_texts()]


def stored_path(page: Any) -> Any:
    return page.page.evaluate(
        "async (id) => (await (await fetch('/api/sessions/' + id)).json())", page.session_id()
    )


def test_regenerate_edit_and_switch_between_versions(new_page, live_server, versioned):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Name a fruit")
    reply = p.locator("#messages .msg-assistant").last
    expect(reply.locator(".msg-text")).to_have_text("Answer 1 to Name a fruit")
    expect(reply.locator(".branch-switch")).to_have_count(0)  # one version: no switcher

    # Regenerate, from the keyboard.
    regenerate = reply.get_by_role("button", name="Regenerate this reply")
    regenerate.focus()
    p.keyboard.press("Enter")
    page.wait_for_reply()
    assert texts(page) == ["Name a fruit", "Answer 2 to Name a fruit"]
    reply = p.locator("#messages .msg-assistant").last
    expect(reply.locator(".branch-pos")).to_have_text("2/2")
    expect(reply.get_by_role("group", name="Version 2 of 2")).to_be_visible()
    expect(p.get_by_label("Message", exact=True)).to_be_focused()

    # Back to the first version; the head moves, a reload keeps it.
    reply.get_by_role("button", name="Previous version").click()
    expect(p.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 1 to Name a fruit"]
    )
    reply = p.locator("#messages .msg-assistant").last
    expect(reply.locator(".branch-pos")).to_have_text("1/2")
    expect(reply.get_by_role("button", name="Previous version")).to_be_disabled()
    expect(reply.get_by_role("button", name="Next version")).to_be_focused()
    p.reload()
    expect(p.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 1 to Name a fruit"]
    )

    # Edit: Escape and Cancel leave the message as it was.
    mine = p.locator("#messages .msg-user").first
    mine.get_by_role("button", name="Edit your message").click()
    editor = mine.get_by_label("Edited message")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("Name a fruit")
    editor.fill("Name a vegetable")
    editor.press("Escape")
    expect(mine.locator(".msg-editor")).to_have_count(0)
    expect(mine.get_by_role("button", name="Edit your message")).to_be_focused()
    mine.get_by_role("button", name="Edit your message").click()
    mine.get_by_label("Edited message").fill("Name a vegetable")
    mine.get_by_role("button", name="Cancel").click()
    assert texts(page) == ["Name a fruit", "Answer 1 to Name a fruit"]
    assert versioned.count == 2  # nothing was sent

    # Send writes a new branch: the old version stays, one switch away.
    mine.get_by_role("button", name="Edit your message").click()
    mine.get_by_label("Edited message").fill("Name a vegetable")
    mine.get_by_role("button", name="Send").click()
    expect(p.get_by_label("Message", exact=True)).to_be_focused()
    page.wait_for_reply()
    assert texts(page) == ["Name a vegetable", "Answer 3 to Name a vegetable"]
    mine = p.locator("#messages .msg-user").first
    expect(mine.locator(".branch-pos")).to_have_text("2/2")
    detail = stored_path(page)
    assert [m["content"] for m in detail["messages"]] == [
        "Name a vegetable",
        "Answer 3 to Name a vegetable",
    ]
    assert detail["messages"][0]["siblingSeqs"] == [1, 4]

    # Previous on the message: its first version, with the reply last shown under it.
    mine.get_by_role("button", name="Previous version").click()
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["Name a fruit"])
    expect(p.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 2 to Name a fruit"]
    )
    expect(p.locator("#messages .msg-assistant .branch-pos")).to_have_text("2/2")
    expect(p.locator("#messages .msg-user .branch-pos")).to_have_text("1/2")
    assert stored_path(page)["headSeq"] == 3


def test_retry_a_failed_turn_and_a_stopped_reply(new_page, live_server, versioned):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    versioned.fail_next = True
    send(page, "Hello there")
    # The failed reply shows in its place, with why and one Retry (not a second one on
    # the message it answers).
    failed = p.locator("#messages .msg-failed")
    expect(failed).to_contain_text("The assistant failed")
    retry = failed.get_by_role("button", name="Retry: write this reply again")
    expect(retry).to_be_visible()
    expect(p.locator("#messages button.msg-retry")).to_have_count(1)
    expect(p.locator("#messages .msg-assistant:not(.msg-failed)")).to_have_count(0)

    retry.click()  # nobody retypes the message
    page.wait_for_reply()
    assert texts(page) == ["Hello there", "Answer 2 to Hello there"]
    expect(failed).to_have_count(0)
    expect(p.locator("#messages button.msg-retry")).to_have_count(0)
    expect(p.locator("#chat-error")).to_be_hidden()

    # A stopped reply offers Retry too; streaming and Stop work as for any message.
    versioned.hold = True
    p.locator("#messages .msg-assistant").last.get_by_role(
        "button", name="Regenerate this reply"
    ).click()
    streaming = p.locator("#messages .msg-streaming .msg-text")
    expect(streaming).to_contain_text("Answer 3")
    expect(p.get_by_role("button", name="Stop")).to_be_visible()
    p.get_by_role("button", name="Stop").click()
    expect(p.get_by_label("Message", exact=True)).to_be_focused()
    page.wait_for_reply()
    stopped = p.locator("#messages .msg-assistant").last
    expect(stopped).to_have_class(re.compile(r"\bmsg-stopped\b"))
    expect(stopped.locator(".branch-pos")).to_have_text("2/2")
    versioned.hold = False
    stopped.get_by_role("button", name="Retry: write this reply again").click()
    page.wait_for_reply()
    assert texts(page) == ["Hello there", "Answer 4 to Hello there"]
    expect(p.locator("#messages .msg-assistant .branch-pos")).to_have_text("3/3")
    expect(p.locator("#messages .msg-user")).to_have_count(1)
    detail = stored_path(page)
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["siblingSeqs"] == [2, 3, 4]


def test_a_second_device_follows_the_head(new_page, live_server, versioned):
    email = live_server.new_email()
    laptop = new_page().open().sign_up(email)
    lp = laptop.page
    laptop.say("Pick a colour")
    lp.locator("#messages .msg-assistant").last.get_by_role(
        "button", name="Regenerate this reply"
    ).click()
    laptop.wait_for_reply()

    phone = new_page().open().sign_in(email)
    pp = phone.page
    expect(pp.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 2 to Pick a colour"]
    )
    expect(pp.locator("#messages .msg-assistant .branch-pos")).to_have_text("2/2")

    # The laptop moves the head: the phone follows, unasked.
    lp.locator("#messages .msg-assistant").last.get_by_role(
        "button", name="Previous version"
    ).click()
    expect(pp.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 1 to Pick a colour"]
    )
    expect(pp.locator("#messages .msg-assistant .branch-pos")).to_have_text("1/2")

    # An edit on the phone shows on the laptop as the branch it made.
    mine = pp.locator("#messages .msg-user").first
    mine.get_by_role("button", name="Edit your message").click()
    mine.get_by_label("Edited message").fill("Pick a number")
    mine.get_by_role("button", name="Send").click()
    phone.wait_for_reply()
    expect(lp.locator("#messages .msg-user .msg-text")).to_have_text(["Pick a number"])
    expect(lp.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 3 to Pick a number"]
    )
    expect(lp.locator("#messages .msg-user .branch-pos")).to_have_text("2/2")


def test_a_search_hit_on_another_branch_opens_that_branch(new_page, live_server, versioned):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Plan a picnic")
    mine = p.locator("#messages .msg-user").first
    mine.get_by_role("button", name="Edit your message").click()
    mine.get_by_label("Edited message").fill("Plan a barbecue")
    mine.get_by_role("button", name="Send").click()
    page.wait_for_reply()
    assert texts(page) == ["Plan a barbecue", "Answer 2 to Plan a barbecue"]

    p.get_by_label("Search conversations").fill("picnic")
    rows = page.history("Active")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("mark")).to_have_text("picnic")  # the search's row
    rows.first.get_by_role("button", name="Plan a picnic", exact=True).click()
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["Plan a picnic"])
    expect(p.locator("#messages .msg-assistant .msg-text")).to_have_text(
        ["Answer 1 to Plan a picnic"]
    )
    expect(p.locator("#messages mark")).to_have_text(["picnic"])
    expect(p.locator("#messages .msg-user .branch-pos")).to_have_text("1/2")


def test_screenshots_of_a_conversation_with_versions(new_page, live_server, versioned, tmp_path):
    """A branched conversation at 1280x800 and on a 390x844 phone, with the editor open:
    every control inside its bubble and on screen. WEB_SCREENSHOTS_DIR keeps the pictures."""
    wanted = os.environ.get("WEB_SCREENSHOTS_DIR")
    out = (PROJECT_ROOT / wanted) if wanted else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    email = live_server.new_email("maya")
    desk = new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
    desk.open().sign_up(email)
    p = desk.page
    desk.say("Suggest a name for a bakery in Lisbon")
    desk.say("Make it shorter and easier to say")
    reply = p.locator("#messages .msg-assistant").last
    for _ in range(2):
        reply.get_by_role("button", name="Regenerate this reply").click()
        desk.wait_for_reply()
        reply = p.locator("#messages .msg-assistant").last
    first = p.locator("#messages .msg-user").first
    first.get_by_role("button", name="Edit your message").click()
    first.get_by_label("Edited message").fill("Suggest a name for a bakery in Porto")
    first.get_by_role("button", name="Send").click()
    desk.wait_for_reply()
    desk.say("Make it shorter and easier to say")
    p.locator("#messages .msg-user").first.get_by_role("button", name="Previous version").click()
    expect(p.locator("#messages .msg-assistant .branch-pos").last).to_have_text("3/3")
    p.locator("#composer-input").blur()
    p.screenshot(path=str(out / "versions-desktop.png"))

    phone = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.open().sign_in(email)
    pp = phone.page
    expect(pp.locator("#messages .msg-assistant .branch-pos").last).to_have_text("3/3")
    pp.locator("#composer-input").blur()
    pp.screenshot(path=str(out / "versions-phone.png"))
    last_user = pp.locator("#messages .msg-user").last
    last_user.get_by_role("button", name="Edit your message").click()
    expect(last_user.get_by_label("Edited message")).to_be_focused()
    pp.screenshot(path=str(out / "versions-phone-editing.png"))

    # A turn that failed: the failed reply in its place, with Retry.
    versioned.fail_next = True
    send(desk, "And one for a café next door")
    expect(
        p.locator("#messages .msg-failed").get_by_role(
            "button", name="Retry: write this reply again"
        )
    ).to_be_visible()
    p.locator("#composer-input").blur()
    p.screenshot(path=str(out / "retry-desktop.png"))

    for page in (p, pp):
        width = page.viewport_size["width"]
        controls = page.locator("#messages .branch-switch, #messages .msg-act:visible, .msg-editor")
        for i in range(controls.count()):
            box = controls.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, box
            bubble = controls.nth(i).locator("xpath=ancestor::li[1]").bounding_box()
            assert bubble and box["x"] + box["width"] <= bubble["x"] + bubble["width"] + 1


def test_a_refused_edit_keeps_its_text_and_the_conversation(tight_server, new_page):
    page = new_page(server=tight_server).open().sign_up(tight_server.new_email())
    p = page.page
    page.say("Hello")
    page.say("Hello again")
    expect(p.locator("#quota")).to_contain_text("0 messages left this minute")
    before = texts(page)

    mine = p.locator("#messages .msg-user").first
    mine.get_by_role("button", name="Edit your message").click()
    mine.get_by_label("Edited message").fill("Good morning")
    mine.get_by_role("button", name="Send").click()
    expect(p.locator("#chat-error")).to_contain_text("Please wait")
    # Over the limit nothing was stored: the conversation is as it was, the edit still open.
    expect(mine.get_by_label("Edited message")).to_have_value("Good morning")
    expect(p.locator("#messages .msg-streaming, #messages .msg-pending")).to_have_count(0)
    p.get_by_role("button", name="Cancel").click()
    assert texts(page) == before
    expect(p.locator("#messages .msg-user button.msg-edit").first).to_be_disabled()
    assert [m["content"] for m in stored_path(page)["messages"]] == before
