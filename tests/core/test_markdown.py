"""Markdown on the server (the share page): the page's dialect, and nothing executable."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from app.core.markdown import LINK_REL, to_html

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "[x](vbscript:msgbox(1))",
    "[x](file:///etc/passwd)",
    "[x](/relative/path)",
    "![x](data:image/png;base64,AAAA)",
    "<iframe src=https://example.org></iframe>",
    '<div style="position:fixed">x</div>',
    "&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
    "[[[a](https://a.example)]](https://b.example)",
    "<svg onload=alert(1)>",
    "```\n</code></pre><script>alert(1)</script>\n```",
    "$</span><script>alert(1)</script>$",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


ALLOWED_TAGS = {
    "a", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "input", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_markdown_makes_no_executable_markup(source: str) -> None:
    parser = _Tags()
    parser.feed(to_html(source))
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, tag
        assert not any(name.startswith("on") or name == "style" for name in attrs), attrs
        href = attrs.get("href")
        if href is not None:
            assert href.startswith(("https://", "http://", "mailto:")), href
            assert attrs.get("rel") == LINK_REL and attrs.get("target") == "_blank"


def test_the_shapes_match_the_page() -> None:
    html = to_html(
        "**b** ~~s~~ www.example.com\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
        "```python\nx = 1\n```\n\n- [x] done\n\n$x^2$\n\n\\[y\\]"
    )
    assert "<strong>b</strong>" in html and "<s>s</s>" in html
    assert f'<a href="http://www.example.com" target="_blank" rel="{LINK_REL}">' in html
    assert '<td class="md-align-right">2</td>' in html
    assert '<span class="code-lang">python</span>' in html
    assert '<pre tabindex="0"><code class="language-python">x = 1\n</code>' in html
    assert '<table tabindex="0">' in html  # both scroll sideways, by keyboard too
    checkbox = 'class="task-list-item-checkbox" checked="checked" disabled="disabled"'
    assert f'<input {checkbox} type="checkbox" aria-label="Task">' in html
    assert '<span class="math math-inline">x^2</span>' in html
    assert '<div class="math math-display">y</div>' in html


def test_newlines_are_line_breaks_and_raw_html_is_text() -> None:
    assert to_html("one\ntwo <b>x</b>") == "<p>one<br>\ntwo &lt;b&gt;x&lt;/b&gt;</p>\n"
