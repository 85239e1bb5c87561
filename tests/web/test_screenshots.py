"""Desktop chat with a draft card, a Markdown reply, and History on a phone and on a
1280x800 desktop, as pictures.

Runs with the suite (pictures go to a temporary folder and are checked). To refresh the
README's screenshots:

   WEB_SCREENSHOTS_DIR=docs/screenshots .venv/bin/python -m pytest tests/web -k screenshots
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from app.core.runtime import PROJECT_ROOT
from tests.conftest import TEST_PASSWORD
from tests.fakemodel import FakeModel, Planned, serve_model
from tests.web.conftest import LiveServer, _settings, running_server
from tests.web.test_history_actions import set_last_activity

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

    # Older conversations, a pinned one and tags, so History shows its date groups.
    older = _older_conversations(live_server, email)
    expect(desk.history("All")).to_have_count(4 + older)

    phone = new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.open().sign_in(email)
    rows = phone.history("All")
    expect(rows).to_have_count(4 + older)
    phone.page.screenshot(path=str(OUT / "history-phone.png"))

    wide = new_page(viewport={"width": 1280, "height": 800}, color_scheme="light")
    wide.open().sign_in(email)
    rows = wide.history("All")
    expect(rows).to_have_count(4 + older)
    expect(wide.page.locator("#history-list .group-head").first).to_have_text("Pinned")
    expect(wide.page.locator(".draft-card img").last).to_have_js_property("complete", True)
    wide.page.locator("#composer-input").blur()
    wide.page.screenshot(path=str(OUT / "history-desktop.png"))

    from PIL import Image

    with Image.open(OUT / "chat-desktop.png") as desktop:
        assert desktop.size == (1440, 960)
    with Image.open(OUT / "history-phone.png") as phone_shot:
        assert phone_shot.size == (390 * 2, 844 * 2)
    with Image.open(OUT / "history-desktop.png") as history_shot:
        assert history_shot.size == (1280, 800)


MARKDOWN_REPLY = """Here is a **three-step plan** for the spring sale:

| Step | Owner | Due |
|:-----|:------|----:|
| Pick the products | Maya | Mar 3 |
| Write the posts | Arjun | Mar 6 |
| Launch | Everyone | Mar 10 |

The discount for an order of $n$ items is $d(n) = \\min(5n, 25)\\%$.

```python
def discount(items: int) -> int:
    return min(5 * items, 25)
```

- [x] Budget approved
- [ ] Photos taken

The photo brief is at https://example.com/spring-sale/brief, and the
[checklist](https://example.com/spring-sale/checklist) has the rest.
"""


@pytest.fixture
def model_server(live_server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose model (an OpenAI-compatible one, faked) answers in Markdown, so the
    page names a model under the message box as it would with a real one."""
    model = FakeModel(default=Planned(text=MARKDOWN_REPLY), title=Planned(text="Spring sale plan"))
    assert live_server.settings.database_url
    with serve_model(model) as served:
        settings = _settings(
            live_server.settings.database_url,
            tmp_path / "model-server",
            assistant_backend="openai",
            llm_base_url=f"{served.url}/v1",
            llm_model="llama3.2",
        )
        with running_server(settings, sweeper=False, clock=live_server.clock) as live:
            yield live


def test_markdown_screenshot(model_server, new_page, tmp_path):
    # The server first, so it stops after the pages close (their event streams with them).
    wanted = os.environ.get("WEB_SCREENSHOTS_DIR")
    out = (PROJECT_ROOT / wanted) if wanted else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    live_server = model_server
    page = new_page(live_server, viewport={"width": 1280, "height": 800}, color_scheme="light")
    page.open().sign_up(live_server.new_email("maya"))
    page.say("Plan the spring sale: steps, owners and the discount rule")
    p = page.page
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator(".katex")).to_have_count(2)
    expect(reply.locator("pre code .hljs-keyword").first).to_be_visible()
    expect(p.locator("#chat-heading")).to_have_text("Spring sale plan")
    expect(p.locator("#composer")).to_contain_text("llama3.2")
    p.wait_for_function("() => document.fonts.status === 'loaded'")
    p.locator("#composer-input").blur()
    p.screenshot(path=str(out / "chat-markdown.png"))

    # The same reply on a phone (390x844): the table and the code scroll inside the bubble,
    # the page itself never sideways.
    phone = new_page(
        live_server,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
    )
    phone.open().sign_in(page.page.locator("#who").inner_text())
    q = phone.page
    reply = q.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator(".katex")).to_have_count(2)
    expect(reply.locator("a[href='https://example.com/spring-sale/checklist']")).to_be_visible()
    q.wait_for_function("() => document.fonts.status === 'loaded'")
    reply.locator("table").scroll_into_view_if_needed()
    assert q.evaluate("() => document.documentElement.scrollWidth") <= 390
    q.locator("#composer-input").blur()
    q.screenshot(path=str(out / "chat-markdown-phone.png"))

    from PIL import Image

    with Image.open(out / "chat-markdown.png") as shot:
        assert shot.size == (1280, 800)
    with Image.open(out / "chat-markdown-phone.png") as shot:
        assert shot.size == (390 * 2, 844 * 2)


def _older_conversations(live_server, email: str) -> int:
    """Conversations of the last weeks (their last activity set in the database); returns
    how many."""
    days_ago = {
        "Newsletter ideas for March": 1,
        "Thank-you note to our suppliers": 1,
        "Hiring post for backend engineers": 3,
        "Recipe cards for the cafe menu": 5,
        "Quarterly report summary": 24,
        "Team offsite agenda": 31,
        "Birthday card for the founder": 45,
    }
    tags = {
        "Newsletter ideas for March": ["newsletter", "work"],
        "Hiring post for backend engineers": ["work", "hiring"],
        "Quarterly report summary": ["work"],
        "Recipe cards for the cafe menu": ["cafe"],
    }
    with httpx.Client(base_url=live_server.url, timeout=15) as api:
        token = api.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        now = live_server.clock.now()
        for title, days in days_ago.items():
            r = api.post(
                "/api/chat",
                json={"messages": [{"role": "user", "content": title}]},
                headers=headers,
            )
            assert r.status_code == 200, r.text
            session_id = r.json()["sessionId"]
            body = {"tags": tags.get(title, []), "pinned": title.startswith("Newsletter")}
            assert api.patch(f"/api/sessions/{session_id}", json=body, headers=headers).is_success
            set_last_activity(live_server, session_id, now - timedelta(days=days, hours=2))
    return len(days_ago)
