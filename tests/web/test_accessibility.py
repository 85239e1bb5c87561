"""axe-core in a real Chromium on the chat, the history, the settings and a share page: no
serious or critical finding (WCAG 2.x A and AA rules), in the light and the dark scheme.

axe-core is a test-only copy (tests/web/vendor/, fetched by scripts/vendor_web.py). It is
evaluated through the browser's debugging protocol, so the page's strict CSP stays on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.test_markdown_page import RICH, ScriptedAssistant

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def scripted(use_assistant: Any) -> Any:
    return lambda *pieces: use_assistant(ScriptedAssistant(pieces=pieces))


def serious_findings(p: Any) -> list[str]:
    """axe's serious and critical violations on the page as it is now, one line each."""
    if not p.evaluate("() => typeof window.axe === 'object'"):
        p.evaluate(AXE)
    result = p.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags},"
        " resultTypes: ['violations']})",
        TAGS,
    )
    found = []
    for v in result["violations"]:
        if v["impact"] not in ("serious", "critical"):
            continue
        for node in v["nodes"]:
            found.append(f"{v['id']} ({v['impact']}): {node['target']} {node['failureSummary']}")
    return found


def assert_clean(p: Any) -> None:
    found = serious_findings(p)
    assert not found, "\n".join(found)


# Code and a table too wide for the bubble: they scroll on their own, and the keyboard
# reaches them.
WIDE = (
    "```text\n" + "a line much longer than the bubble is wide " * 8 + "\n```\n\n"
    "| " + " | ".join(f"Column {i}" for i in range(16)) + " |\n"
    "|" + "---|" * 16 + "\n"
    "| " + " | ".join(f"value {i}" for i in range(16)) + " |\n"
)


def _conversation(page: Any, scripted: Any) -> None:
    scripted(RICH + "\n" + WIDE)
    page.say("Plan the week, with a table")
    p = page.page
    expect(p.locator("#messages .md-table, #messages table").first).to_be_visible()
    wide = p.locator("#messages .msg-assistant pre").last
    assert wide.evaluate("(el) => el.scrollWidth > el.clientWidth")
    assert p.locator("#messages .msg-assistant table").last.evaluate(
        "(el) => el.scrollWidth > el.clientWidth"
    )
    wide.focus()
    p.keyboard.press("ArrowRight")
    p.wait_for_function(
        "() => [...document.querySelectorAll('#messages pre')].at(-1).scrollLeft > 0"
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_chat_history_and_settings_have_no_serious_findings(
    new_page, live_server, scripted, scheme
):
    page = new_page(color_scheme=scheme).open().sign_up(live_server.new_email())
    p = page.page
    assert_clean(p)  # the empty chat and its suggestions
    _conversation(page, scripted)
    p.get_by_role("button", name="New conversation").click()
    page.say("Create a LinkedIn post about hiring engineers")
    rows = page.history("Active")
    expect(rows).to_have_count(2)
    rows.first.get_by_role("button", name="More", exact=False).click()
    rows.first.get_by_role("button", name="Edit tags…", exact=True).click()
    dialog = p.locator("#tags-dialog")
    dialog.get_by_label("Tags, separated by commas").fill("work, ideas")
    dialog.get_by_role("button", name="Save").click()
    expect(p.locator("#tag-filter .tag-chip")).to_have_count(2)
    assert_clean(p)  # chat (with Markdown, a draft) and history side by side

    p.get_by_role("button", name="Settings").click()
    expect(p.locator("#settings")).to_be_visible()
    assert_clean(p)


def test_the_phone_layout_and_the_share_page_have_no_serious_findings(
    new_page, live_server, scripted
):
    page = new_page(viewport=PHONE, is_mobile=True).open()
    p = page.page
    expect(p.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_clean(p)  # the sign-in form
    page.sign_up(live_server.new_email())
    _conversation(page, scripted)
    assert_clean(p)
    page.history("Active")
    assert_clean(p)

    p.get_by_role("button", name="Chat", exact=True).click()
    p.get_by_role("button", name="Share", exact=True).click()
    dialog = p.get_by_role("dialog", name="Share this conversation")
    dialog.get_by_role("button", name="Create link").click()
    url = dialog.get_by_label("Link", exact=True)
    expect(url).to_have_value(re.compile(r"/s/"))
    assert_clean(p)  # the dialog open

    visitor = new_page()
    visitor.page.goto(url.input_value())
    expect(visitor.page.locator(".shared-msg")).to_have_count(2)
    assert_clean(visitor.page)
