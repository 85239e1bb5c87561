"""Markdown of messages on the server, in the page's dialect (app/web/static/js/markdown.js).

markdown-it-py is the Python port of the page's markdown-it, and mdit-py-plugins ports
its plugins, so the share page and the PDF read a message as the page does: CommonMark
with GitHub's tables, strikethrough, task lists and autolinks (linkify-it-py), a line
break for every newline, and TeX math (``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``,
markdown-it-texmath's rules on both sides).

Raw HTML is never markup (``html: False``); only http(s) and mailto links are made;
images become links to them. :func:`to_html` is for the share page: its output goes
through nh3 (ammonia) with a short list of tags and attributes. :func:`parse` gives the
tokens the PDF lays out (app/typesetting/pdf.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from mdit_py_plugins.tasklists import tasklists_plugin
from mdit_py_plugins.texmath import texmath_plugin
from mdit_py_plugins.texmath.index import dollar_post, dollar_pre, make_inline_func

__all__ = ["LINK_REL", "MATH_BLOCKS", "MATH_INLINE", "is_web_url", "parse", "to_html"]

LINK_REL = "noopener noreferrer nofollow"
_WEB_URL = re.compile(r"^(?:https?:|mailto:)", re.IGNORECASE)
MATH_INLINE = frozenset({"math_inline", "math_single"})
MATH_BLOCKS = frozenset({"math_block", "math_block_eqno", "math_inline_double"})

# The page's markdown-it-texmath has `$$…$$` inside a line (shown on a line of its own);
# mdit-py-plugins' port has not: the same rule, added before its `$…$`.
_INLINE_DOUBLE: Any = {
    "name": "math_inline_double",
    "rex": re.compile(r"^\${2}([^$]*?[^\\])\${2}"),
    "tmpl": "{0}",
    "tag": "$$",
    "pre": dollar_pre,
    "post": dollar_post,
}


def is_web_url(url: str) -> bool:
    return bool(_WEB_URL.match(url.strip()))


def _render_math(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    display = token.type in MATH_BLOCKS
    tag = "div" if token.block else "span"
    kind = "display" if display else "inline"
    return f'<{tag} class="math math-{kind}">{escapeHtml(token.content.strip())}</{tag}>'


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    return f'<a class="md-image" href="{escapeHtml(src)}">{escapeHtml(alt)}</a>'


def _render_cell(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    # Column alignment as a class, as on the page (whose CSP forbids style attributes).
    token = tokens[idx]
    style = token.attrGet("style")
    if style:
        token.attrs.pop("style", None)
        align = str(style).removeprefix("text-align:").strip()
        if align in ("left", "right", "center"):
            token.attrJoin("class", f"md-align-{align}")
    return str(self.renderToken(tokens, idx, options, env))


def _render_fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    lang = token.info.strip().split(maxsplit=1)[0] if token.info.strip() else ""
    code_class = f' class="language-{escapeHtml(lang)}"' if lang else ""
    return (
        '<div class="code-block"><div class="code-head">'
        f'<span class="code-lang">{escapeHtml(lang or "text")}</span></div>'
        f"<pre><code{code_class}>{escapeHtml(token.content)}</code></pre></div>\n"
    )


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("gfm-like", {"html": False, "breaks": True, "typographer": False})
    md.validateLink = is_web_url  # type: ignore[method-assign]
    tasklists_plugin(md, enabled=False)
    md.inline.ruler.before("escape", "math_inline_double", make_inline_func(_INLINE_DOUBLE))
    texmath_plugin(md, delimiters="dollars")
    texmath_plugin(md, delimiters="brackets")
    for name in (*MATH_INLINE, *MATH_BLOCKS):
        md.add_render_rule(name, _render_math)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("th_open", _render_cell)
    md.add_render_rule("td_open", _render_cell)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_fence)
    return md


def parse(text: str) -> list[Token]:
    """The block tokens of ``text`` (inline ones as their ``children``)."""
    return _parser().parse(text)


_TAGS = {
    "a", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "input", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"class"},
    "a": {"href"},
    "ol": {"start"},
    "input": {"checked", "disabled"},
}
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    tag_attribute_values={"input": {"type": {"checkbox"}}},
    # A task's checkbox needs a name (as on the page); checked says whether it is done.
    # Code, tables and display formulas scroll sideways on their own: the keyboard reaches
    # them (as on the page).
    set_tag_attribute_values={
        "a": {"target": "_blank"},
        "input": {"aria-label": "Task"},
        "pre": {"tabindex": "0"},
        "table": {"tabindex": "0"},
    },
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)


def to_html(text: str) -> str:
    """``text`` as sanitized HTML for a page without script: the share page."""
    return _CLEANER.clean(_parser().render(text))
