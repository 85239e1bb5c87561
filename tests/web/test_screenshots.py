"""Desktop chat with a draft card and phone-width history, as pictures.

Runs with the suite (pictures go to a temporary folder and are checked). To refresh the
README's screenshots:

   WEB_SCREENSHOTS_DIR=docs/screenshots .venv/bin/python -m pytest tests/web -k screenshots
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from app.core.runtime import PROJECT_ROOT

pytestmark = [pytest.mark.browser]


def test_screenshots(new_page, live_server, tmp_path):
    wanted = os.environ.get("WEB_SCREENSHOTS_DIR")
    OUT = (PROJECT_ROOT / wanted) if wanted else tmp_path
    OUT.mkdir(parents=True, exist_ok=True)
    email = live_server.new_email("maya")
    desk = new_page(viewport={"width": 1440, "height": 960}, color_scheme="light")
    desk.open().sign_up(email)
    p = desk.page
    for text in (
        "Plan a product launch checklist for our spring sale",
        "Write a LinkedIn post about our new office in Pune",
        "Create an Instagram post about monsoon recipes",
    ):
        desk.say(text)
        p.get_by_role("button", name="New conversation").click()
    desk.say("Hi! What can you do?")
    desk.say("Create a Facebook post about Diwali with image")
    expect(p.locator(".draft-card img").last).to_have_js_property("complete", True)
    p.locator("#composer-input").blur()
    p.screenshot(path=str(OUT / "chat-desktop.png"))

    # One conversation archived, so the phone shows both kinds.
    row = desk.history("Active").filter(has_text="Plan a product launch")
    row.get_by_role("button", name="More", exact=False).click()
    row.get_by_role("button", name="Archive", exact=True).click()
    expect(desk.history("Active")).to_have_count(3)

    phone = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.open().sign_in(email)
    rows = phone.history("All")
    expect(rows).to_have_count(4)
    phone.page.screenshot(path=str(OUT / "history-phone.png"))

    from PIL import Image

    with Image.open(OUT / "chat-desktop.png") as desktop:
        assert desktop.size == (1440, 960)
    with Image.open(OUT / "history-phone.png") as phone_shot:
        assert phone_shot.size == (390 * 2, 844 * 2)
