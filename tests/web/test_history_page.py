"""The history browser in a real Chromium: search, read-only view, rename, delete (to the
trash, then for good), scrolling, several devices, and other users."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.browser


def open_menu(row, action: str) -> None:
    row.get_by_role("button", name="More", exact=False).click()
    row.get_by_role("button", name=action, exact=True).click()


def test_search_finds_a_word_inside_an_archived_conversation(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Hello there")
    page.say("Our saffron marigold festival is on Sunday")
    p.get_by_role("button", name="New conversation").click()
    page.say("Create a LinkedIn post about hiring engineers")

    rows = page.history("Active")
    expect(rows).to_have_count(2)
    open_menu(rows.filter(has_text="Hello there"), "Archive")
    expect(rows).to_have_count(1)

    p.get_by_label("Search conversations").fill("marigold")
    archived = page.history("Archived")
    expect(archived).to_have_count(1)
    expect(archived.first.locator(".row-title")).to_have_text("Hello there")
    expect(page.history("All")).to_have_count(1)
    expect(page.history("Active")).to_have_count(0)
    expect(p.locator("#history-status")).to_contain_text("No active conversations match")

    # Open it: at the message that matched, with the message box ready; sending continues it.
    archived = page.history("Archived")
    archived.first.get_by_role("button", name="Hello there", exact=True).click()
    expect(p.locator("#viewer-bar")).to_be_hidden()
    expect(p.locator("#chat-notice")).to_contain_text("Your next message continues it")
    found = p.locator("#messages li.msg-found")
    expect(found).to_contain_text("saffron marigold festival")
    expect(found.locator("mark")).to_have_text(["marigold"])
    expect(found).to_be_focused()
    expect(p.get_by_label("Message", exact=True)).to_be_enabled()

    page.say("And the lanterns are yellow")
    expect(p.locator("#messages .msg-user")).to_have_count(3)

    p.get_by_label("Search conversations").fill("")
    expect(page.history("Archived")).to_have_count(0)
    expect(page.history("Active")).to_have_count(2)


def test_rename_and_delete_with_confirmation_survive_a_reload(new_page, live_server):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("First idea for the newsletter")
    p.get_by_role("button", name="New conversation").click()
    page.say("Second idea for the blog")
    rows = page.history("Active")
    expect(rows).to_have_count(2)

    open_menu(rows.filter(has_text="First idea"), "Rename")
    dialog = p.get_by_role("dialog", name="Rename conversation")
    dialog.get_by_label("Title").fill("Newsletter, March issue")
    dialog.get_by_label("Title").press("Enter")
    expect(rows.filter(has_text="Newsletter, March issue")).to_have_count(1)

    # Delete moves it to the trash at once (with an undo); deleting for good asks first.
    open_menu(rows.filter(has_text="Second idea"), "Delete")
    expect(rows).to_have_count(1)
    # It was the conversation the chat continued: the chat starts afresh.
    expect(p.locator("#messages .msg")).to_have_count(0)
    expect(p.locator("#chat-notice")).to_be_hidden()  # not "deleted on another device"
    expect(p.get_by_label("Message", exact=True)).to_be_enabled()

    trash = page.history("Trash")
    expect(trash).to_have_count(1)
    forever = trash.first.get_by_role("button", name="Delete “Second idea for the blog” forever")
    forever.click()
    confirm = p.get_by_role("dialog", name="Delete forever?")
    expect(confirm).to_contain_text("Second idea for the blog")
    confirm.get_by_role("button", name="Keep it").click()
    expect(trash).to_have_count(1)

    forever.click()
    confirm.get_by_role("button", name="Delete forever").click()
    expect(trash).to_have_count(0)
    expect(p.locator("#history-status")).to_have_text("The trash is empty.")

    p.reload()
    rows = page.history("All")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".row-title")).to_have_text("Newsletter, March issue")
    expect(page.history("Trash")).to_have_count(0)


def test_long_history_loads_more_while_scrolling(new_page, live_server):
    email = live_server.new_email()
    with httpx.Client(base_url=live_server.url, timeout=15) as api:
        assert api.post(
            "/auth/register", json={"email": email, "password": TEST_PASSWORD}
        ).is_success
        token = api.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for n in range(1, 27):
            r = api.post(
                "/api/chat",
                json={"messages": [{"role": "user", "content": f"Conversation number {n}"}]},
                headers=headers,
            )
            assert r.status_code == 200, r.text

    page = new_page(viewport={"width": 1280, "height": 700}).open().sign_in(email)
    rows = page.history("Active")
    expect(rows.first).to_be_visible()
    assert rows.count() < 26  # the first page only
    rows.last.scroll_into_view_if_needed()
    expect(rows).to_have_count(26)
    expect(page.page.locator("#history-status")).to_have_text("26 conversations")
    titles = rows.locator(".row-title").all_inner_texts()
    assert titles[0] == "Conversation number 26" and titles[-1] == "Conversation number 1"
    assert len(set(titles)) == 26


def test_two_devices_share_history_and_another_user_sees_none(new_page, live_server):
    email = live_server.new_email()
    laptop = new_page().open().sign_up(email)
    laptop.say("Plan the Diwali party menu")
    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True).open().sign_in(email)
    rows = phone.history("Active")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".row-title")).to_have_text("Plan the Diwali party menu")

    # The phone opens the conversation the laptop left, and continues it.
    phone.page.get_by_role("button", name="Chat", exact=True).click()
    expect(phone.page.locator("#messages .msg-user .msg-text")).to_have_text(
        ["Plan the Diwali party menu"]
    )
    phone.say("Add sweets for 20 guests")

    laptop.page.reload()
    expect(laptop.page.locator("#messages .msg-user .msg-text")).to_have_text(
        ["Plan the Diwali party menu", "Add sweets for 20 guests"]
    )
    session_id = laptop.session_id()
    assert session_id
    assert phone.session_id() == session_id

    stranger = new_page().open().sign_up(live_server.new_email("stranger"))
    expect(stranger.history("All")).to_have_count(0)
    expect(stranger.page.locator("#history-status")).to_have_text("No conversations yet.")
    expect(stranger.page.locator("#messages .msg")).to_have_count(0)
    status = stranger.page.evaluate(
        "async (id) => (await fetch('/api/sessions/' + id)).status", session_id
    )
    assert status == 404


def test_imported_chatgpt_file_shows_its_source_and_search_highlights_a_prefix(
    new_page, live_server, tmp_path
):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    source = Path(__file__).parent.parent / "imports" / "fixtures" / "chatgpt-conversations.json"
    upload = tmp_path / "conversations.json"
    upload.write_bytes(source.read_bytes())
    p.locator("#import-file").set_input_files(str(upload))
    expect(p.locator("#transfer")).to_contain_text("1 conversation imported into Archived")
    expect(p.locator("#transfer")).to_contain_text("left out: “Broken: no mapping”")
    # It says where they went, and shows them there.
    expect(p.get_by_role("tab", name="Archived", exact=True)).to_have_attribute(
        "aria-selected", "true"
    )
    shown = p.locator("#history-list li.row").filter(has_text="Feeding a sourdough starter")
    expect(shown).to_have_count(1)
    row = page.history("All").filter(has_text="Feeding a sourdough starter")
    expect(row.locator(".badge-imported")).to_have_text("From ChatGPT")

    p.get_by_label("Search conversations").fill("sourd")
    found = page.history("All")
    expect(found).to_have_count(1)
    expect(found.first.locator(".row-snippet mark")).to_have_text("sourd")
    expect(found.first.locator(".row-snippet")).to_contain_text("feed a sourdough starter")
