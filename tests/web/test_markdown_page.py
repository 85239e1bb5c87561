"""Replies drawn as Markdown in a real Chromium: the shapes (strong, tables, code with its
language and Copy, safe links, KaTeX), a hostile corpus that stays inert on the page and on
the share page, code that shows as code while its fence is still open, Copy and times on
every message, following a reply only from the end, and a double-click on Send."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import expect

from app.assistant.base import ReplyOutput, TextAssistant, TurnInput

pytestmark = pytest.mark.browser

LINK_REL = "noopener noreferrer nofollow"

RICH = """# Plan

Some **bold** words, ~~struck~~, `inline code` and a link to https://example.com/docs.

| Fruit | Count |
|:------|------:|
| Apple | 3 |
| Pear | 12 |

```python
def greet(name):
    return f"Hello, {name}!"
```

- [x] written
- [ ] tested

Euler: $e^{i\\pi} + 1 = 0$

$$
\\int_0^1 x^2\\,dx = \\frac{1}{3}
$$
"""

BIG_CODE = "x = 1  # " + "a" * 60 + "\n"
HOSTILE = (
    "<script>alert('script')</script>\n\n"
    "<img src=x onerror=\"alert('img')\">\n\n"
    '<a href="javascript:alert(1)">raw link</a> <iframe src="https://example.org/"></iframe>\n\n'
    "[click me](javascript:alert('link')) "
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) "
    "[vb](vbscript:msgbox(1)) [file](file:///etc/passwd) [rel](/api/me)\n\n"
    "![tracker](https://tracker.example.net/pixel.png) "
    "![inline](data:image/png;base64,iVBORw0KGgo=)\n\n"
    "[[[nested](https://a.example)]](https://b.example) [broken](https://c.example **x\n\n"
    "&lt;script&gt;alert(1)&lt;/script&gt; &#x3C;img src=x onerror=alert(2)&#x3E; &amp;amp;\n\n"
    '<style>body{display:none}</style> <div style="position:fixed;inset:0">cover</div>\n\n'
    "$\\href{javascript:alert(1)}{x}$ $\\url{javascript:alert(2)}$\n\n"
    "https://" + "w" * 300 + ".example/" + "p" * 300 + "\n\n"
    "```html\n<script>alert('in code')</script>\n" + BIG_CODE * (100_000 // len(BIG_CODE)) + "```\n"
)


@dataclass
class ScriptedAssistant(TextAssistant):
    """Writes `pieces` one by one; before each piece whose index is in `pauses` it waits
    until the test calls go()."""

    name: str = "scripted"
    pieces: tuple[str, ...] = ()
    pauses: tuple[int, ...] = ()
    gates: list[threading.Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gates = [threading.Event() for _ in self.pauses]

    def go(self) -> None:
        """Lets the writing go on to the next pause."""
        next(gate for gate in self.gates if not gate.is_set()).set()

    async def write(self, turn: TurnInput, out: ReplyOutput) -> None:
        for i, piece in enumerate(self.pieces):
            if i in self.pauses:
                gate = self.gates[self.pauses.index(i)]
                while not gate.is_set():
                    await asyncio.sleep(0.05)
            out.write(piece)
            await asyncio.sleep(0.01)


@pytest.fixture
def scripted(use_assistant: Any) -> Iterator[Any]:
    made: list[ScriptedAssistant] = []

    def make(*pieces: str, pauses: tuple[int, ...] = ()) -> ScriptedAssistant:
        assistant = ScriptedAssistant(pieces=pieces, pauses=pauses)
        made.append(assistant)
        use_assistant(assistant)
        return assistant

    yield make
    for assistant in made:
        for gate in assistant.gates:
            gate.set()


def share_token(p: Any) -> str:
    """Shares the conversation the page shows; returns the link's token."""
    return str(
        p.evaluate(
            """async () => {
            const csrf = document.cookie.match(/chatkeep_csrf=([^;]+)/)[1];
            const id = Object.entries(localStorage)
                .find(([key]) => key.startsWith('chatkeep:session:'))[1];
            const r = await fetch(`/api/sessions/${id}/share`, {method: 'POST',
                headers: {'X-CSRF-Token': decodeURIComponent(csrf)}});
            return (await r.json()).token;
        }"""
        )
    )


def send(page: Any, text: str) -> None:
    box = page.page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def test_a_markdown_reply_has_its_shapes_and_copy_buttons(new_page, live_server, scripted):
    scripted(RICH)
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.open().sign_up(live_server.new_email())
    p = page.page
    page.say("Make a plan with **stars**")
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator("h1")).to_have_text("Plan")
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("s")).to_have_text("struck")
    expect(reply.locator("table th")).to_have_text(["Fruit", "Count"])
    expect(reply.locator("table td.md-align-right").last).to_have_text("12")
    link = reply.locator("a", has_text="https://example.com/docs")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("rel", LINK_REL)
    expect(link).to_have_attribute("target", "_blank")
    block = reply.locator(".code-block")
    expect(block.locator(".code-lang")).to_have_text("python")
    expect(block.locator("pre code")).to_contain_text('return f"Hello, {name}!"')
    # highlight.js is loaded for the first code block, and colours it.
    expect(block.locator("pre code .hljs-keyword").first).to_have_text("def")
    expect(reply.locator("input[type=checkbox]")).to_have_count(2)
    expect(reply.locator("input[type=checkbox]").first).to_be_checked()
    expect(reply.locator("input[type=checkbox]").first).to_be_disabled()
    # KaTeX draws both formulas, with its own fonts from this server.
    expect(reply.locator(".math-inline .katex")).to_have_count(1)
    expect(reply.locator(".math-display .katex-display")).to_have_count(1)
    p.wait_for_function("() => document.fonts.check('16px KaTeX_Main')")
    # The user's own message is shown as typed.
    expect(p.locator("#messages .msg-user .msg-text").last).to_have_text(
        "Make a plan with **stars**"
    )

    block.get_by_role("button", name="Copy the python code").click()
    expect(block.locator(".code-copy")).to_have_text("Copied")
    assert p.evaluate("navigator.clipboard.readText()") == (
        'def greet(name):\n    return f"Hello, {name}!"\n'
    )
    item = p.locator("#messages li.msg-assistant").last
    item.locator(".msg-foot").get_by_role("button", name=re.compile("^Copy the message")).click()
    assert p.evaluate("navigator.clipboard.readText()") == RICH

    # A visible time; the full date and time when hovered.
    time = item.locator(".msg-foot time.msg-time")
    expect(time).to_have_text(re.compile(r"\d"))
    expect(time).to_have_attribute("title", re.compile(r"\d{4}"))
    assert time.inner_text() == time.evaluate(
        "(el) => new Date(el.dateTime).toLocaleTimeString([], {timeStyle: 'short'})"
    )  # today: the time alone
    # An older message names its day too; hovering shows the full date and time.
    older = p.evaluate(
        """async () => {
            const { timeOf } = await import('/static/js/chat-panel.js');
            const el = timeOf(new Date(Date.now() - 3 * 86400e3).toISOString());
            return [el.textContent, el.title];
        }"""
    )
    assert re.search(r"[A-Za-z]{3} \d{1,2}, \d{1,2}:\d{2}", older[0]), older
    assert re.search(r"\d{4}", older[1]) and older[1] != older[0], older

    # After a reload, the stored reply is drawn the same way.
    p.reload()
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator("table")).to_have_count(1)
    expect(reply.locator(".code-block .code-copy")).to_have_count(1)
    expect(reply.locator(".katex")).to_have_count(2)
    assert page.dialogs == []

    # The share page draws the same reply on the server, in the same shapes (its formulas
    # as their TeX source: it runs no script).
    visitor = new_page()
    v = visitor.page
    v.goto(f"{live_server.url}/s/{share_token(p)}")
    shared = v.locator(".shared-assistant .shared-text")
    expect(shared.locator("h1")).to_have_text("Plan")
    expect(shared.locator("strong")).to_have_text("bold")
    expect(shared.locator("s")).to_have_text("struck")
    expect(shared.locator("table th")).to_have_text(["Fruit", "Count"])
    expect(shared.locator("table td.md-align-right").last).to_have_text("12")
    expect(shared.locator(".code-block .code-lang")).to_have_text("python")
    expect(shared.locator("pre code")).to_contain_text('return f"Hello, {name}!"')
    expect(shared.locator("pre")).to_have_attribute("tabindex", "0")
    link = shared.locator("a", has_text="https://example.com/docs")
    expect(link).to_have_attribute("rel", LINK_REL)
    expect(link).to_have_attribute("target", "_blank")
    expect(shared.locator("input[type=checkbox]:checked")).to_have_count(1)
    expect(shared.locator(".math-inline")).to_have_text("e^{i\\pi} + 1 = 0")
    expect(shared.locator(".math-display")).to_contain_text("\\int_0^1")
    assert visitor.dialogs == []


def test_formulas_in_brackets_and_the_libraries_load_on_first_use(new_page, live_server, scripted):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    vendor: list[str] = []
    p.on("request", lambda r: vendor.append(r.url) if "/vendor/" in r.url else None)
    scripted("Plain words, **bold** and nothing else.")
    page.say("Say something plain")
    expect(p.locator("#messages .msg-assistant strong")).to_have_text("bold")
    assert not [u for u in vendor if "highlight" in u or "katex" in u], vendor

    scripted("Inline \\(a^2 + b^2\\) and on its own line:\n\n\\[c^2 = a^2 + b^2\\]\n")
    page.say("Some maths")
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator(".math-inline .katex")).to_have_count(1)
    expect(reply.locator(".math-display .katex-display")).to_have_count(1)
    assert any("katex.mjs" in u for u in vendor), vendor
    assert not [u for u in vendor if "highlight" in u], vendor  # no code yet

    scripted("```js\nconst x = 1;\n```\n")
    page.say("Some code")
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator("pre code .hljs-keyword")).to_have_text("const")
    assert any("highlight.mjs" in u for u in vendor), vendor


def _inert(p: Any, root: str) -> None:
    """Nothing in `root` can run or load: no script, frame, image or handler, and every
    link is a web link that opens in a new tab."""
    found = p.evaluate(
        """(root) => {
            const box = document.querySelector(root);
            const all = [...box.querySelectorAll("*")];
            return {
                banned: all.filter((n) => /^(SCRIPT|IFRAME|IMG|STYLE|OBJECT|EMBED|FORM|SVG)$/i
                    .test(n.nodeName)).map((n) => n.nodeName),
                handlers: all.flatMap((n) => [...n.attributes].map((a) => a.name))
                    .filter((name) => name.startsWith("on")),
                hrefs: [...box.querySelectorAll("[href], [src]")]
                    .map((n) => n.getAttribute("href") || n.getAttribute("src")),
                links: [...box.querySelectorAll("a[href]")].map((a) => [a.target, a.rel]),
            };
        }""",
        root,
    )
    assert found["banned"] == []
    assert found["handlers"] == []
    assert found["hrefs"], "the corpus has web links"
    assert all(re.match(r"^(https?:|mailto:)", h) for h in found["hrefs"]), found["hrefs"]
    assert all(link == ["_blank", LINK_REL] for link in found["links"])


def test_a_hostile_reply_stays_inert_on_the_page_and_the_share_page(
    new_page, live_server, scripted
):
    scripted(HOSTILE)
    page = new_page()
    p = page.page
    outside: list[str] = []
    p.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
    page.open().sign_up(live_server.new_email())
    page.say("Show me everything")
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply).to_contain_text("<script>alert('script')</script>")  # raw HTML is text
    expect(reply.locator(".code-block .code-lang")).to_have_text("html")
    expect(reply.locator("a.md-image")).to_have_text(["tracker"])  # a link, never loaded
    p.wait_for_timeout(300)  # time for anything that would run to run
    _inert(p, "#messages")
    assert page.dialogs == []
    assert outside == []
    # Nothing breaks out of the conversation's column.
    widths = p.locator("#chat-scroll").evaluate(
        "(el) => [el.scrollWidth, el.clientWidth, "
        "el.querySelector('.msg-assistant').getBoundingClientRect().right, "
        "el.getBoundingClientRect().right]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3]

    # The same reply on the share page, drawn on the server.
    token = share_token(p)
    visitor = new_page()
    v = visitor.page
    v.on("request", lambda r: None if r.url.startswith(live_server.url) else outside.append(r.url))
    v.goto(f"{live_server.url}/s/{token}")
    shared = v.locator(".shared-assistant .shared-text")
    expect(shared).to_contain_text("<script>alert('script')</script>")
    expect(shared.locator(".code-block .code-lang")).to_have_text("html")
    v.wait_for_timeout(300)
    _inert(v, "main")
    assert visitor.dialogs == [] and outside == []


def test_an_open_code_fence_streams_as_code(new_page, live_server, scripted):
    assistant = scripted(
        "Here you go:\n\n```python\n",
        "def total(items):\n",
        "    return sum(items)\n",
        "print(total([1, 2]))\n",
        "```\n\nDone.",
        pauses=(4,),
    )
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    send(page, "Write code")
    streaming = p.locator("#messages .msg-streaming .msg-text")
    code = streaming.locator(".code-block pre code")
    expect(code).to_contain_text("print(total([1, 2]))")
    expect(streaming.locator(".code-lang")).to_have_text("python")
    assert "```" not in streaming.inner_text()
    assistant.go()
    page.wait_for_reply()
    reply = p.locator("#messages .msg-assistant .msg-text").last
    expect(reply.locator("p").last).to_have_text("Done.")
    expect(reply.locator(".code-block")).to_have_count(1)


def test_scrolling_up_while_a_reply_streams_is_not_pulled_back(new_page, live_server, scripted):
    lines = tuple(f"Line {i} of a long answer.\n\n" for i in range(60))
    assistant = scripted(
        *lines[:30], "Still writing…\n\n", *lines[30:], "The end.", pauses=(31, 61)
    )
    page = new_page(viewport={"width": 1280, "height": 700}).open()
    page.sign_up(live_server.new_email())
    p = page.page
    send(page, "Write a lot")
    streaming = p.locator("#messages .msg-streaming .msg-text")
    expect(streaming).to_contain_text("Still writing")
    scroller = p.locator("#chat-scroll")
    jump = p.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_hidden()  # followed so far: the view is at the end
    scroller.evaluate("(el) => { el.scrollTop = 0; }")
    assistant.go()
    expect(streaming).to_contain_text("Line 59")
    expect(jump).to_be_visible()
    assert scroller.evaluate("(el) => el.scrollTop") < 50  # left where the user put it
    jump.click()
    expect(jump).to_be_hidden()
    assistant.go()
    page.wait_for_reply()
    assert scroller.evaluate("(el) => el.scrollHeight - el.scrollTop - el.clientHeight") < 50


def test_a_double_click_on_send_does_not_stop_the_reply(new_page, live_server, scripted):
    assistant = scripted("First words. ", "The rest.", pauses=(1,))
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    p.get_by_label("Message", exact=True).fill("Hello")
    p.get_by_role("button", name="Send").dblclick()
    expect(p.locator("#messages .msg-streaming .msg-text")).to_contain_text("First words.")
    expect(p.get_by_role("button", name="Stop")).to_be_enabled()
    expect(p.get_by_label("Message", exact=True)).to_be_focused()
    assistant.go()
    page.wait_for_reply()
    expect(p.locator("#messages .msg-assistant .msg-text").last).to_have_text(
        "First words. The rest."
    )
    expect(p.locator(".msg-note")).to_have_count(0)  # not "Stopped before the end"
