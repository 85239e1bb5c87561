"""The web page at / in a real Chromium: sign-up, chat, drafts, expiry, restore."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_signed_out_visitor_sees_the_sign_in_form_and_a_strict_page(new_page, api):
    page = new_page().open()
    p = page.page
    expect(p.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(p.get_by_label("Email")).to_be_visible()
    expect(p.locator("#workspace")).to_be_hidden()

    served = api.get("/")
    assert served.status_code == 200
    csp = served.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    html = served.text
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html
    # The platforms come from the server's table, as data the CSP does not need to allow.
    assert '<script type="application/json" id="platforms-data">' in html


def test_wrong_password_is_explained(new_page, live_server):
    email = live_server.new_email()
    page = new_page().open().sign_up(email)
    p = page.page
    p.get_by_role("button", name="Sign out").click()
    expect(p.get_by_role("heading", name="Sign in")).to_be_visible()
    p.get_by_label("Email").fill(email)
    p.get_by_label("Password").fill("not the password")
    p.get_by_role("button", name="Sign in").click()
    expect(p.locator("#auth-error")).to_have_text("Wrong email or password.")


def test_draft_post_regenerate_expire_restore_and_continue(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page

    page.say("Create a Facebook post about Diwali with image")
    card = p.locator("#messages .draft-card").last
    expect(card).to_contain_text("Diwali")
    expect(card.locator("h3")).to_have_text("Facebook post · Diwali")  # the name users read
    expect(card.locator(".badge")).to_have_text("Waiting for you")
    image = card.get_by_role("img")
    expect(image).to_be_visible()
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0  # the image really loaded

    card.get_by_role("button", name="Post").click()
    expect(p.locator("#messages .msg-assistant").last).to_contain_text("published")
    expect(card.locator(".badge")).to_have_text("Posted")
    expect(card.get_by_role("button", name="Post")).to_have_count(0)
    # What the Post button sent is what a user could have typed.
    expect(p.locator("#messages .msg-user .msg-text").last).to_have_text("post it")

    page.say("regenerate the previous post")
    cards = p.locator("#messages .draft-card")
    expect(cards).to_have_count(2)
    expect(cards.last.locator(".badge")).to_have_text("Waiting for you")
    expect(cards.last).to_contain_text("Diwali")
    session_id = page.session_id()

    rows = page.history("Active")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Create a Facebook post about Diwali")
    expect(rows.first).to_contain_text("6 messages")

    # Time passes; the sweeper archives the idle conversation. The page says so, and its
    # draft can still be posted: writing in it continues it.
    live_server.expire_sessions()
    expect(page.wait_for_rows("Archived", 1)).to_have_count(1)
    expect(page.history("Active")).to_have_count(0)
    if p.locator("#view-nav").is_visible():
        p.get_by_role("button", name="Chat", exact=True).click()
    expect(p.locator("#chat-notice")).to_contain_text("Your next message continues it")
    expect(cards.last.locator(".badge")).to_have_text("Waiting for you")

    page.say("hello again")
    assert page.session_id() == session_id
    expect(p.locator("#chat-notice")).to_be_hidden()
    expect(p.locator("#messages .msg-user")).to_have_count(4)
    expect(page.history("Active")).to_have_count(1)
    expect(page.history("Archived")).to_have_count(0)
    if p.locator("#view-nav").is_visible():
        p.get_by_role("button", name="Chat", exact=True).click()

    p.locator("#messages .draft-card").last.get_by_role("button", name="Post").click()
    expect(p.locator("#messages .msg-assistant").last).to_contain_text("published")
    assert page.session_id() == session_id


def test_a_script_typed_as_a_message_is_shown_as_text(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    attack = "<script>alert('x')</script><img src=x onerror=alert(1)>"
    page.say(attack)
    expect(p.locator("#messages .msg-user .msg-text").last).to_have_text(attack)
    assert p.locator("#messages script").count() == 0
    assert p.locator("#messages img[src='x']").count() == 0
    rows = page.history("Active")
    expect(rows.first.locator(".row-title")).to_have_text(attack)
    p.reload()
    expect(p.locator("#messages .msg-user .msg-text").first).to_have_text(attack)
    assert page.dialogs == []


# The server first, so its pages close before it stops (a server stopping under open
# streams waits for them).
def test_quota_is_shown_and_a_429_says_when_to_retry(tight_server, new_page):
    page = new_page(server=tight_server).open().sign_up(tight_server.new_email())
    p = page.page
    expect(p.locator("#quota")).to_contain_text("2 messages left this minute")
    page.say("Hello")
    expect(p.locator("#quota")).to_contain_text("1 message left this minute")
    page.say("Hello again")
    expect(p.locator("#quota")).to_contain_text("0 messages left this minute")

    box = p.get_by_label("Message", exact=True)
    box.fill("One more, please")
    box.press("Enter")
    expect(p.locator("#chat-error")).to_contain_text("Please wait")
    expect(p.locator("#chat-error")).to_contain_text("try again")
    expect(p.get_by_role("button", name="Send")).to_be_disabled()
    # Nothing was lost: the refused message is back in the box, not in the conversation.
    expect(box).to_have_value("One more, please")
    expect(p.locator("#messages .msg-user")).to_have_count(2)


def test_coming_back_after_expiry_shows_the_conversation_ready_to_continue(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Draft a note about the team offsite")
    session_id = page.session_id()
    live_server.expire_sessions()
    expect(page.wait_for_rows("Archived", 1)).to_have_count(1)

    p.reload()
    expect(p.locator("#chat-notice")).to_contain_text("Your next message continues it")
    expect(p.locator("#chat-heading")).to_have_text("Draft a note about the team offsite")
    expect(p.locator("#messages .msg")).to_have_count(2)
    box = p.get_by_label("Message", exact=True)
    expect(box).to_be_enabled()
    page.say("And the venue is the lake house")
    assert page.session_id() == session_id
    expect(p.locator("#messages .msg-user")).to_have_count(2)
    expect(p.locator("#chat-notice")).to_be_hidden()
    expect(page.history("Archived")).to_have_count(0)
    expect(page.history("Active").first).to_contain_text("4 messages")


def test_text_typed_before_the_conversation_expired_continues_it(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Plan the quarterly review")
    session_id = page.session_id()
    box = p.get_by_label("Message", exact=True)
    box.fill("Add a slot for questions")  # typed, not yet sent, when it expires

    live_server.expire_sessions()
    expect(p.locator("#chat-notice")).to_contain_text(
        "Your next message continues it", timeout=20_000
    )
    expect(box).to_have_value("Add a slot for questions")
    box.press("Enter")
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(
        ["Plan the quarterly review", "Add a slot for questions"]
    )
    page.wait_for_reply()
    assert page.session_id() == session_id
    expect(page.history("Active")).to_have_count(1)
    expect(page.history("Archived")).to_have_count(0)


def test_keyboard_only_use(new_page, live_server):
    page = new_page().open()
    p = page.page
    p.get_by_role("button", name="Create an account").focus()
    p.keyboard.press("Enter")
    p.get_by_label("Email").focus()
    p.keyboard.type(live_server.new_email())
    p.keyboard.press("Tab")
    p.keyboard.type("correct horse battery staple")
    p.keyboard.press("Enter")
    box = p.get_by_label("Message", exact=True)
    expect(box).to_be_focused()
    p.keyboard.type("first line")
    p.keyboard.press("Shift+Enter")
    p.keyboard.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    p.keyboard.press("Enter")
    expect(p.locator("#messages .msg-user .msg-text")).to_have_text(["first line\nsecond line"])

    active = p.get_by_role("tab", name="Active", exact=True)
    active.focus()
    p.keyboard.press("ArrowRight")
    archived = p.get_by_role("tab", name="Archived", exact=True)
    expect(archived).to_be_focused()
    expect(archived).to_have_attribute("aria-selected", "true")
    p.keyboard.press("ArrowLeft")
    expect(p.locator("#history-list li.row")).to_have_count(1)

    more = p.locator("#history-list li.row").first.get_by_role("button", name="More", exact=False)
    more.focus()
    p.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(p.get_by_role("button", name="Archive", exact=True)).to_be_focused()
    p.keyboard.press("Escape")
    expect(more).to_have_attribute("aria-expanded", "false")
    expect(more).to_be_focused()


def test_each_line_of_a_message_reads_in_its_own_direction(new_page, live_server):
    # A Latin first line must not make a later Arabic line left-to-right: its "!" belongs
    # on the left of the Arabic word, where a right-to-left line ends.
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    box = p.get_by_label("Message", exact=True)
    box.fill("Hello there\nمرحبا بكم!")  # noqa: RUF001 - Arabic is the point
    box.press("Enter")
    page.wait_for_reply()
    bubble = p.locator("#messages .msg-user .msg-text").last
    expect(bubble).to_have_attribute("dir", "auto")
    where = bubble.evaluate(
        """(el) => {
            const node = el.firstChild, text = node.textContent;
            const left = (i, n) => {
                const range = document.createRange();
                range.setStart(node, i);
                range.setEnd(node, i + n);
                return range.getBoundingClientRect().left;
            };
            const word = text.indexOf("\u0645\u0631\u062d\u0628\u0627");
            return { hello: left(0, 5), word: left(word, 5), bang: left(text.indexOf("!"), 1),
                     box: el.getBoundingClientRect().left };
        }"""
    )
    assert abs(where["hello"] - where["box"]) < 2  # the Latin line starts at the left
    assert where["bang"] < where["word"]  # the Arabic line ends on the left, with its "!"


def test_on_a_phone_the_top_bar_shows_every_control(new_page, live_server):
    phone = new_page(viewport={"width": 390, "height": 800}).open()
    phone.sign_up(live_server.new_email("phone"))
    p = phone.page
    for control in (
        p.get_by_role("button", name="Chat", exact=True),
        p.get_by_role("button", name="History", exact=True),
        p.get_by_role("button", name="Settings"),
        p.get_by_role("button", name="Sign out"),
    ):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    # The name is still there for screen readers.
    expect(p.get_by_role("heading", name="Chatkeep", level=1)).to_be_attached()

    # The chat's head is one row: title, Share and New conversation (a plus, by its name).
    phone.say("Plan a picnic by the river for twelve people next Saturday")
    head = p.locator("#chat-panel > .panel-head")
    parts = [
        p.locator("#chat-heading"),
        p.get_by_role("button", name="Share", exact=True),
        p.get_by_role("button", name="New conversation", exact=True),
    ]
    for part in parts:
        expect(part).to_be_visible()
    boxes = [part.bounding_box() for part in parts]
    head_box = head.bounding_box()
    assert head_box is not None and head_box["height"] < 64, head_box
    assert all(b is not None and b["y"] >= head_box["y"] for b in boxes), boxes
    assert all(b["y"] + b["height"] <= head_box["y"] + head_box["height"] for b in boxes), boxes
    assert boxes[2]["x"] + boxes[2]["width"] <= 390, boxes
    title = parts[0].evaluate("(el) => [el.scrollWidth > el.clientWidth, el.textContent]")
    assert title == [True, "Plan a picnic by the river for twelve people next Saturday"]
