"""The history page's dense rows and what can be done from them, in a real Chromium: date
groups, the countdown to archiving, the trash with undo, pins, tags, selecting a range for a
bulk action, and a search result that opens at the message that matched."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import TEST_PASSWORD, _asyncpg_kwargs

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}


class Account:
    """A user made through the API, for conversations made faster than by typing."""

    def __init__(self, live_server: Any) -> None:
        self.server = live_server
        self.email = live_server.new_email()
        self.api = httpx.Client(base_url=live_server.url, timeout=15)
        r = self.api.post("/auth/register", json={"email": self.email, "password": TEST_PASSWORD})
        assert r.is_success, r.text
        token = self.api.post(
            "/auth/jwt/login", data={"username": self.email, "password": TEST_PASSWORD}
        )
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def say(self, text: str, session_id: str | None = None) -> str:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
        if session_id:
            body["sessionId"] = session_id
        r = self.api.post("/api/chat", json=body, headers=self.headers)
        assert r.status_code == 200, r.text
        return str(r.json()["sessionId"])

    def start(self, *titles: str) -> list[str]:
        return [self.say(title) for title in titles]

    def sessions(self, status: str) -> list[dict[str, Any]]:
        r = self.api.get(f"/api/sessions?status={status}&limit=100", headers=self.headers)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def close(self) -> None:
        self.api.close()


@pytest.fixture
def account(live_server):
    made: list[Account] = []

    def make() -> Account:
        made.append(Account(live_server))
        return made[-1]

    yield make
    for a in made:
        a.close()


def run_sql(live_server: Any, sql: str, *args: Any) -> None:
    """Runs one statement on the test database, from a thread of its own (Playwright keeps an
    event loop running in this one)."""

    async def go() -> None:
        conn = await asyncpg.connect(**_asyncpg_kwargs(live_server.settings.database_url))
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(go())
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the SQL did not finish"
    if errors:
        raise errors[0]


def set_last_activity(live_server: Any, session_id: str, at: datetime) -> None:
    run_sql(
        live_server,
        "UPDATE chat_session SET last_activity_at = $1 WHERE id = $2",
        at,
        session_id,
    )


def fully_visible_rows(p: Any) -> int:
    return int(
        p.evaluate(
            """() => {
              const view = document.getElementById('history-scroll').getBoundingClientRect();
              return [...document.querySelectorAll('#history-list li.row')].filter((r) => {
                const box = r.getBoundingClientRect();
                return box.height > 0
                  && box.top >= view.top - 0.5 && box.bottom <= view.bottom + 0.5;
              }).length;
            }"""
        )
    )


def group_heads(p: Any) -> list[str]:
    return [str(t) for t in p.locator("#history-list .group-head").all_inner_texts()]


def group_of(row: Any) -> str:
    return str(row.evaluate("(r) => r.closest('.history-group').querySelector('h3').textContent"))


def open_menu(row: Any, action: str) -> None:
    row.get_by_role("button", name="More actions", exact=False).click()
    row.get_by_role("button", name=action, exact=True).click()


def test_dense_rows_fit_eight_on_a_desktop_screen(new_page, live_server, account):
    user = account()
    long_title = "A very long title about planning the whole spring product launch " * 3
    user.start(long_title.strip(), *[f"Idea number {n} for the newsletter" for n in range(1, 12)])
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    rows = page.history("Active")
    expect(rows).to_have_count(12)
    assert fully_visible_rows(p) >= 8

    # One line per title, cut with an ellipsis; the row is no taller than the others.
    top = rows.filter(has_text="A very long title")
    title = top.locator(".row-title")
    assert title.evaluate("(t) => t.scrollWidth > t.clientWidth")
    assert title.evaluate("(t) => getComputedStyle(t).textOverflow") == "ellipsis"
    heights = rows.evaluate_all("(rs) => rs.map((r) => r.getBoundingClientRect().height)")
    assert max(heights) - min(heights) < 1 and max(heights) <= 60
    # The meta line: time, message count and the countdown.
    expect(top.locator(".row-meta")).to_contain_text("2 messages")
    expect(top.locator(".row-time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))


def test_rows_are_grouped_by_last_activity_in_the_users_time_zone(new_page, live_server, account):
    user = account()
    ids = user.start(
        "Today's plan", "Yesterday's notes", "Earlier this week", "Last month", "Older still"
    )
    zone = timezone(timedelta(hours=5, minutes=30))  # Asia/Kolkata, no daylight saving
    now = live_server.clock.now().astimezone(zone)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    times = {
        ids[1]: midnight - timedelta(hours=1),
        ids[2]: midnight - timedelta(days=3, hours=-2),
        ids[3]: midnight - timedelta(days=40),
        ids[4]: midnight - timedelta(days=80),
    }
    for session_id, at in times.items():
        set_last_activity(live_server, session_id, at.astimezone(UTC))

    page = new_page(viewport=DESKTOP, timezone_id="Asia/Kolkata", locale="en-US")
    page.open().sign_in(user.email)
    p = page.page
    rows = page.history("All")
    expect(rows).to_have_count(5)
    expected = [
        "Today",
        "Yesterday",
        "Previous 7 days",
        times[ids[3]].strftime("%B %Y"),
        times[ids[4]].strftime("%B %Y"),
    ]
    expect(p.locator("#history-list .group-head")).to_have_text(expected)
    assert group_of(rows.filter(has_text="Today's plan")) == "Today"
    assert group_of(rows.filter(has_text="Yesterday's notes")) == "Yesterday"
    assert group_of(rows.filter(has_text="Earlier this week")) == "Previous 7 days"
    # Times are shown in the browser's zone: yesterday 23:00 there.
    expect(rows.filter(has_text="Yesterday's notes").locator(".row-time")).to_have_text(
        re.compile(r"11:00\s?PM")
    )


def test_an_active_conversation_says_when_it_will_be_archived(new_page, live_server, account):
    user = account()
    user.start("Counting down")
    ttl_minutes = live_server.settings.session_ttl_seconds // 60
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    row = page.history("Active").first
    expiry = row.locator(".row-expiry")
    expect(expiry).to_have_text(re.compile(rf"^archives in ({ttl_minutes}|{ttl_minutes - 1}) min$"))
    # Hovering says what that means.
    expect(expiry).to_have_attribute("title", re.compile(r"archived after a while without"))

    # The countdown follows the server's clock, not the browser's.
    live_server.clock.advance(4 * 60)
    p.get_by_role("tab", name="Active", exact=True).click()
    expect(expiry).to_have_text(
        re.compile(rf"^archives in ({ttl_minutes - 4}|{ttl_minutes - 5}) min$")
    )
    expect(page.history("Archived")).to_have_count(0)


def test_the_countdown_ticks_without_a_reload(new_page, live_server, account):
    user = account()
    user.start("Ticking")
    ttl_minutes = live_server.settings.session_ttl_seconds // 60
    page = new_page(viewport=DESKTOP)
    p = page.page
    p.clock.install()
    page.open().sign_in(user.email)
    expiry = page.history("Active").first.locator(".row-expiry")
    expect(expiry).to_have_text(re.compile(rf"^archives in ({ttl_minutes}|{ttl_minutes - 1}) min$"))
    before = int(re.findall(r"\d+", expiry.inner_text())[0])
    p.clock.run_for(3 * 60_000)
    expect(expiry).to_have_text(re.compile(rf"^archives in ({before - 3}|{before - 4}) min$"))


def test_delete_moves_to_the_trash_and_undo_brings_it_back(new_page, live_server, account):
    user = account()
    user.start("Keep this one", "Almost lost")
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    rows = page.history("Active")
    expect(rows).to_have_count(2)
    open_menu(rows.filter(has_text="Almost lost"), "Delete")
    expect(rows).to_have_count(1)
    toast = p.get_by_role("status").filter(has_text="Moved to trash.")
    expect(toast).to_be_visible()
    assert [s["title"] for s in user.sessions("trash")] == ["Almost lost"]

    toast.get_by_role("button", name="Undo").click()
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Almost lost")).to_have_count(1)
    assert user.sessions("trash") == []
    assert {s["title"] for s in user.sessions("active")} == {"Keep this one", "Almost lost"}

    # From the keyboard: Ctrl+Z while the toast is shown.
    open_menu(rows.filter(has_text="Keep this one"), "Delete")
    expect(rows).to_have_count(1)
    expect(toast).to_be_visible()
    p.keyboard.press("Control+z")
    expect(rows).to_have_count(2)
    expect(p.get_by_role("status").filter(has_text="Restored.")).to_be_visible()
    assert user.sessions("trash") == []


def test_trash_view_restores_and_deletes_forever_on_every_device(new_page, live_server, account):
    user = account()
    kept, archived, doomed = user.start("Back to active", "Back to the archive", "Gone for good")
    assert user.api.post(f"/api/sessions/{archived}/archive", headers=user.headers).is_success
    for session_id in (kept, archived):
        assert user.api.delete(f"/api/sessions/{session_id}", headers=user.headers).is_success

    laptop = new_page(viewport=DESKTOP).open().sign_in(user.email)
    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.open().sign_in(user.email)
    phone_trash = phone.history("Trash")
    expect(phone_trash).to_have_count(2)

    # Trashed on the laptop: the phone's Trash shows it too.
    lp = laptop.page
    open_menu(laptop.history("Active").filter(has_text="Gone for good"), "Delete")
    expect(phone_trash).to_have_count(3)

    trash = laptop.history("Trash")
    expect(trash).to_have_count(3)
    expect(trash.first.locator(".row-purge")).to_contain_text("deleted for good on")
    trash.filter(has_text="Back to active").get_by_role("button", name="Restore").click()
    trash.filter(has_text="Back to the archive").get_by_role("button", name="Restore").click()
    expect(trash).to_have_count(1)
    expect(phone_trash).to_have_count(1)  # restored on the laptop: gone from the phone's trash
    expect(laptop.history("Active").filter(has_text="Back to active")).to_have_count(1)
    expect(laptop.history("Archived").filter(has_text="Back to the archive")).to_have_count(1)

    trash = laptop.history("Trash")
    trash.first.get_by_role("button", name="Delete “Gone for good” forever").click()
    confirm = lp.get_by_role("dialog", name="Delete forever?")
    expect(confirm).to_contain_text("This cannot be undone")
    confirm.get_by_role("button", name="Delete forever").click()
    expect(trash).to_have_count(0)
    expect(phone_trash).to_have_count(0)
    assert user.api.get(f"/api/sessions/{doomed}", headers=user.headers).status_code == 404


def test_pin_moves_a_row_to_the_pinned_group(new_page, live_server, account):
    user = account()
    user.start("Oldest idea", "Middle idea", "Newest idea")
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    rows = page.history("Active")
    expect(rows.locator(".row-title")).to_have_text(["Newest idea", "Middle idea", "Oldest idea"])
    expect(p.locator("#history-list .group-head")).to_have_text(["Today"])

    open_menu(rows.filter(has_text="Oldest idea"), "Pin")
    expect(p.locator("#history-list .group-head")).to_have_text(["Pinned", "Today"])
    expect(rows.locator(".row-title")).to_have_text(["Oldest idea", "Newest idea", "Middle idea"])
    assert group_of(rows.first) == "Pinned"
    expect(rows.first.locator(".row-pin")).to_have_count(1)
    assert [s["title"] for s in user.sessions("active") if s["pinned"]] == ["Oldest idea"]

    open_menu(rows.filter(has_text="Oldest idea"), "Unpin")
    expect(p.locator("#history-list .group-head")).to_have_text(["Today"])
    expect(rows.locator(".row-title")).to_have_text(["Newest idea", "Middle idea", "Oldest idea"])


def test_tags_are_edited_per_row_and_filter_the_list(new_page, live_server, account):
    user = account()
    user.start("Quarterly report", "Team offsite", "Birthday card")
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    rows = page.history("Active")
    expect(rows).to_have_count(3)
    expect(p.locator("#tag-filter")).to_be_hidden()  # no tags yet

    for title, tags in (("Quarterly report", "Work, finance"), ("Team offsite", "work")):
        open_menu(rows.filter(has_text=title), "Edit tags…")
        dialog = p.get_by_role("dialog", name=f"Tags for “{title}”")
        dialog.get_by_label("Tags, separated by commas").fill(tags)
        dialog.get_by_role("button", name="Save").click()
    expect(rows.filter(has_text="Quarterly report").locator(".row-tag")).to_have_text(
        ["work", "finance"]
    )

    chips = p.locator("#tag-filter")
    expect(chips.get_by_role("button")).to_have_count(2)
    work = chips.get_by_role("button", name="work, 2 conversations")
    expect(chips.get_by_role("button", name="finance, 1 conversation")).to_be_visible()
    work.click()
    expect(work).to_have_attribute("aria-pressed", "true")
    expect(rows.locator(".row-title")).to_have_text(["Team offsite", "Quarterly report"])
    page.history("All")  # the filter holds across tabs
    expect(rows).to_have_count(2)
    work.click()
    expect(work).to_have_attribute("aria-pressed", "false")
    expect(rows).to_have_count(3)


def test_shift_click_selects_a_range_for_a_bulk_action(new_page, live_server, account):
    user = account()
    user.start(*[f"Draft {n}" for n in range(1, 7)])
    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    rows = page.history("Active")
    expect(rows.locator(".row-title")).to_have_text([f"Draft {n}" for n in range(6, 0, -1)])
    bar = p.get_by_role("toolbar", name="Selected conversations")
    expect(bar).to_be_hidden()

    rows.nth(1).get_by_role("checkbox").click()  # Draft 5
    rows.nth(4).get_by_role("checkbox").click(modifiers=["Shift"])  # ... to Draft 2
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("4 selected")
    checked = rows.evaluate_all("(rs) => rs.map((r) => r.querySelector('.row-check').checked)")
    assert checked == [False, True, True, True, True, False]
    rows.nth(2).get_by_role("checkbox").click()  # a plain click toggles one: Draft 4 off
    expect(bar).to_contain_text("3 selected")
    rows.nth(2).get_by_role("checkbox").click()
    expect(bar).to_contain_text("4 selected")

    bar.get_by_role("button", name="Add tag…").click()
    dialog = p.get_by_role("dialog", name="Add tags to 4 conversations")
    dialog.get_by_label("Tags, separated by commas").fill("batch")
    dialog.get_by_role("button", name="Add").click()
    expect(rows.filter(has=p.locator(".row-tag", has_text="batch"))).to_have_count(4)
    expect(bar).to_be_hidden()  # the selection is cleared after an action

    rows.nth(1).get_by_role("checkbox").click()
    rows.nth(4).get_by_role("checkbox").click(modifiers=["Shift"])
    expect(bar).to_contain_text("4 selected")
    bar.get_by_role("button", name="Move to trash").click()
    expect(rows.locator(".row-title")).to_have_text(["Draft 6", "Draft 1"])
    expect(bar).to_be_hidden()
    toast = p.get_by_role("status").filter(has_text="4 conversations moved to trash.")
    expect(toast).to_be_visible()
    trashed = {s["title"] for s in user.sessions("trash")}
    assert trashed == {"Draft 2", "Draft 3", "Draft 4", "Draft 5"}
    expect(page.history("Trash")).to_have_count(4)


def test_a_search_result_opens_at_the_matching_message(new_page, live_server, account):
    user = account()
    session_id = user.say("Let us plan the autumn newsletter")
    for n in range(1, 16):
        text = "Mention the saffron lanterns at the harbour" if n == 8 else f"Point {n} of the plan"
        user.say(text, session_id)
    user.start("Something newer")  # the chat opens this one; the match is elsewhere

    page = new_page(viewport=DESKTOP).open().sign_in(user.email)
    p = page.page
    p.get_by_label("Search conversations").fill("saffr")
    rows = page.history("All")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".row-snippet mark")).to_have_text("saffr")
    expect(rows.first.locator(".row-snippet")).to_contain_text("saffron lanterns at the harbour")

    rows.first.get_by_role("button", name="Let us plan the autumn newsletter", exact=True).click()
    found = p.locator("#messages > li.msg-found")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("Mention the saffron lanterns")
    expect(found.locator("mark")).to_have_text("saffr")
    expect(found).to_be_focused()
    assert found.get_attribute("data-seq") == "17"
    in_view = found.evaluate(
        """(m) => {
          const view = document.getElementById('chat-scroll').getBoundingClientRect();
          const box = m.getBoundingClientRect();
          return box.top >= view.top && box.bottom <= view.bottom;
        }"""
    )
    assert in_view
    # The first and last messages are out of view: the page scrolled to the match.
    first = p.locator('#messages > li[data-seq="1"]')
    assert first.evaluate(
        "(m) => m.getBoundingClientRect().bottom"
        " < document.getElementById('chat-scroll').getBoundingClientRect().top"
    )
