"""Render a stored conversation to PDF (reportlab), for text in any script.

Each line is itemized into runs, each in a font whose cmap covers all its chars
(app/core/fonts.py: Noto, TrueType outlines, which reportlab needs to embed; see
docs/fonts.md), and set by app/typesetting/shaping.py: fragments shaped on their own,
right-to-left lines broken and ordered there.

Replies (and system messages) are Markdown, read as the page and the share page read them
(app/core/markdown.py): headings, emphasis, lists, quotes, tables as tables, code blocks
and formulas in a monospace font (JetBrains Mono, a package), links with their URL. The
user's own messages are laid out as typed, as the page shows them.
"""

from __future__ import annotations

import importlib.util
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from markdown_it.token import Token
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from app.core.fonts import (
    BASE_FONT,
    CJK_FONT,
    EMOJI_FONT,
    FONT_FILES,
    SYMBOLS_FONT,
    TextRun,
    font_covers,
    itemize_text,
)
from app.core.markdown import MATH_BLOCKS, MATH_INLINE, parse
from app.core.text import (
    grapheme_floor,
    needs_bidi,
)
from app.core.validation import format_utc
from app.typesetting.shaping import (
    bidi_lines,
    ensure_font,
    needs_shaping,
    preserve_spaces,
    register_font,
    runs_markup,
)

__all__ = [
    "BASE_FONT",
    "CJK_FONT",
    "EMOJI_FONT",
    "FONT_FILES",
    "SYMBOLS_FONT",
    "PdfBudget",
    "PdfConversation",
    "PdfMessage",
    "TextRun",
    "font_covers",
    "itemize_text",
    "render_conversation_pdf",
]


@dataclass(frozen=True)
class PdfMessage:
    seq: int
    role: str  # "user" | "assistant" | "system"
    content: str
    created_at: datetime  # tz-aware UTC
    image_path: Path | None = None  # must stay readable until the PDF is written


@dataclass(frozen=True)
class PdfConversation:
    title: str
    session_id: str
    created_at: datetime
    last_activity_at: datetime
    archived_at: datetime | None
    message_count: int
    other_versions: int = 0  # messages kept on branches other than the printed path


# ------------------------------------------------------------------------ layout

_ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}
_ROLE_COLORS = {
    "user": colors.HexColor("#1a73e8"),
    "assistant": colors.HexColor("#188038"),
    "system": colors.HexColor("#8a8a8a"),
}
_OTHER_COLOR = colors.HexColor("#b06000")
_BAR_WIDTH = 3.0
_BAR_GAP = 8.0
_BODY_SIZE = 10.0
_CODE_SIZE = 9.0
_IMAGE_MAX_HEIGHT = 6 * cm
# Bounded flowables: reportlab re-wraps what is left of a paragraph at every page break, so
# one paragraph of n lines costs O(n^2). Paragraphs of at most this many lines (and lines
# cut at this many characters) keep layout linear in the size of the text.
PARAGRAPH_MAX_LINES = 20
LINE_MAX_CHARS = 1500


@dataclass(frozen=True)
class PdfBudget:
    """What one PDF may cost: past either bound it ends with a note saying so."""

    max_pages: int = 2000
    max_seconds: float = 30.0


class _Barred(Flowable):  # type: ignore[misc]
    """A flowable with a coloured bar on its left; splits across pages with its content."""

    def __init__(self, inner: Flowable, color: colors.Color) -> None:
        super().__init__()
        self.inner = inner
        self.color = color
        self._inner_w = 0.0

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        indent = _BAR_WIDTH + _BAR_GAP
        self._inner_w, h = self.inner.wrap(avail_width - indent, avail_height)
        self.width, self.height = avail_width, h
        return avail_width, h

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        parts = self.inner.split(avail_width - _BAR_WIDTH - _BAR_GAP, avail_height)
        return [_Barred(p, self.color) for p in parts]

    def getSpaceBefore(self) -> float:
        return float(self.inner.getSpaceBefore())

    def getSpaceAfter(self) -> float:
        return float(self.inner.getSpaceAfter())

    def draw(self) -> None:
        canv = self.canv
        canv.saveState()
        canv.setFillColor(self.color)
        canv.rect(0, 0, _BAR_WIDTH, self.height, stroke=0, fill=1)
        canv.restoreState()
        self.inner.drawOn(canv, _BAR_WIDTH + _BAR_GAP, 0)


@dataclass(frozen=True)
class _Styles:
    body: ParagraphStyle
    body_shaped: ParagraphStyle
    body_rtl: ParagraphStyle
    code: ParagraphStyle
    code_shaped: ParagraphStyle
    heading: ParagraphStyle
    title: ParagraphStyle
    title_rtl: ParagraphStyle
    meta: ParagraphStyle


@lru_cache(maxsize=1)
def _styles() -> _Styles:
    ensure_font(BASE_FONT)
    body = ParagraphStyle(
        "ck-body",
        fontName=BASE_FONT,
        fontSize=_BODY_SIZE,
        leading=_BODY_SIZE * 1.45,
        alignment=TA_LEFT,
        splitLongWords=1,
        shaping=0,
    )
    body_shaped = ParagraphStyle("ck-body-shaped", parent=body, shaping=1)
    body_rtl = ParagraphStyle("ck-body-rtl", parent=body_shaped, alignment=TA_RIGHT)
    code = ParagraphStyle(
        "ck-code",
        parent=body,
        fontSize=_CODE_SIZE,
        leading=_CODE_SIZE * 1.4,
        backColor=colors.HexColor("#f3f3f3"),
        borderPadding=(3, 4, 3, 4),
        spaceBefore=4,
        spaceAfter=4,
        textColor=colors.HexColor("#202124"),
    )
    code_shaped = ParagraphStyle("ck-code-shaped", parent=code, shaping=1)
    # Gap between messages as spaceBefore: dropped at a page top, unlike a trailing Spacer
    # that can spill onto an otherwise empty last page.
    heading = ParagraphStyle("ck-heading", parent=body, fontSize=9.5, leading=13, spaceBefore=11)
    title = ParagraphStyle(
        "ck-title", parent=body, fontSize=18, leading=23, spaceAfter=6, shaping=1
    )
    title_rtl = ParagraphStyle("ck-title-rtl", parent=title, alignment=TA_RIGHT)
    meta = ParagraphStyle(
        "ck-meta", parent=body, fontSize=8.5, leading=12, textColor=colors.HexColor("#5f6368")
    )
    return _Styles(body, body_shaped, body_rtl, code, code_shaped, heading, title, title_rtl, meta)


def _fmt_dt(value: datetime) -> str:
    # Naive values are UTC by convention; total for any datetime (see format_utc).
    return format_utc(value, "%Y-%m-%d %H:%M UTC")


def _text_paragraphs(
    text: str, width: float, plain: ParagraphStyle, shaped: ParagraphStyle, rtl: ParagraphStyle
) -> list[Paragraph]:
    """Paragraphs for user text: one per source line, so bidi lines can be laid out."""
    out: list[Paragraph] = []
    pending: list[str] = []
    pending_shaped = False

    def flush() -> None:
        nonlocal pending, pending_shaped
        if pending:
            out.append(Paragraph("<br/>".join(pending), shaped if pending_shaped else plain))
            pending, pending_shaped = [], False

    for raw in _bounded_lines(text):
        line = preserve_spaces(raw)
        if needs_bidi(line):
            flush()
            # 2% slack so reportlab never re-wraps a line measured here.
            vis, is_rtl = bidi_lines(line, plain.fontSize, width * 0.98)
            for group in _groups(vis):
                out.append(Paragraph("<br/>".join(group), rtl if is_rtl else shaped))
            continue
        pending.append(runs_markup(itemize_text(line)) if line.strip() else "\xa0")
        pending_shaped = pending_shaped or needs_shaping(line)
        if len(pending) >= PARAGRAPH_MAX_LINES:
            flush()
    flush()
    return out


def _bounded_lines(text: str) -> Iterator[str]:
    """The lines of `text`, a line longer than LINE_MAX_CHARS cut (at a space if one is
    near) into pieces that each start a new line."""
    for line in text.split("\n"):
        while len(line) > LINE_MAX_CHARS:
            cut = line.rfind(" ", LINE_MAX_CHARS // 2, LINE_MAX_CHARS)
            cut = cut + 1 if cut > 0 else grapheme_floor(line, LINE_MAX_CHARS) or LINE_MAX_CHARS
            yield line[:cut]
            line = line[cut:]
        yield line


def _groups(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), PARAGRAPH_MAX_LINES):
        yield items[start : start + PARAGRAPH_MAX_LINES]


_FENCE = re.compile(r"^\s*(```|~~~)")


def _blocks(content: str) -> Iterator[tuple[bool, str]]:
    """Split markdown-ish content into (is_code, text) blocks on ``` fences."""
    lines = content.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    buf: list[str] = []
    in_code = False
    for line in lines:
        if _FENCE.match(line):
            if buf:
                yield in_code, "\n".join(buf)
            buf = []
            in_code = not in_code
            continue
        buf.append(line)
    if buf:
        yield in_code, "\n".join(buf)


# ---------------------------------------------------------------------- Markdown

MONO_FONT = "CK-JetBrainsMono"
ITALIC_FONT = "CK-NotoSans-Italic"
BOLD_FONT = "CK-VeraBold"
BOLD_ITALIC_FONT = "CK-VeraBoldItalic"
# Faces for emphasis and code, beside the fallback chain of app/core/fonts.py (never in it:
# they only stand in for the base face). reportlab's own Bitstream Vera is the bold: Noto
# Sans comes as a variable font whose bold reportlab cannot select, and instancing it
# takes seconds. name -> (package, file inside it).
_STYLE_FONTS: dict[str, tuple[str, str]] = {
    MONO_FONT: ("fontpkg_jetbrains_mono", "files/JetBrainsMono[wght].ttf"),
    ITALIC_FONT: ("manimgx_fonts", "NotoSans-Italic[wght].ttf"),
    BOLD_FONT: ("reportlab", "fonts/VeraBd.ttf"),
    BOLD_ITALIC_FONT: ("reportlab", "fonts/VeraBI.ttf"),
}
_INDENT = 14.0
_TABLE_ROWS = 40  # rows per Table flowable: a long table splits in linear time
_HEADING_SIZES = {1: 14.0, 2: 12.5, 3: 11.5}


def _style_font_path(font: str) -> Path:
    module, rel = _STYLE_FONTS[font]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"font package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / rel


@cache
def _style_cmap(font: str) -> frozenset[int]:
    tt = TTFont(str(_style_font_path(font)), lazy=True)
    try:
        return frozenset(tt.getBestCmap() or ())
    finally:
        tt.close()


def _ensure_style_font(font: str) -> None:
    register_font(font, lambda: _style_font_path(font))


def _styled(text: str, *, bold: bool = False, italic: bool = False, code: bool = False) -> str:
    """Markup for ``text`` in the face its style asks for, char by char where that face
    has the char; any other char keeps the face of app/core/fonts.py's fallback chain."""
    if code:
        variant: str | None = MONO_FONT
    elif bold:
        variant = BOLD_ITALIC_FONT if italic else BOLD_FONT
    else:
        variant = ITALIC_FONT if italic else None
    parts: list[str] = []
    for run in itemize_text(text):
        if variant is None or run.font != BASE_FONT:
            parts.append(runs_markup([run]))
            continue
        covered = _style_cmap(variant)
        piece: list[str] = []
        inside = False
        for ch in run.text + "\0":
            has = ch != "\0" and ord(ch) in covered
            if ch == "\0" or has != inside:
                if piece:
                    chunk = escape("".join(piece))
                    if inside:
                        _ensure_style_font(variant)
                        parts.append(f'<font name="{variant}">{chunk}</font>')
                    else:
                        parts.append(chunk)
                piece, inside = [], has
            if ch != "\0":
                piece.append(ch)
    return "".join(parts)


@dataclass
class _Line:
    markup: list[str]
    plain: list[str]


def _inline_lines(children: list[Any]) -> list[_Line]:
    """An inline token's children as lines of markup (with their plain text)."""
    lines = [_Line([], [])]
    bold = italic = 0
    links: list[tuple[str, int, int]] = []  # (href, line, offset in its plain text)

    def add(markup: str, plain: str) -> None:
        lines[-1].markup.append(markup)
        lines[-1].plain.append(plain)

    for tok in children:
        kind = tok.type
        if kind == "text":
            add(_styled(tok.content, bold=bold > 0, italic=italic > 0), tok.content)
        elif kind in ("strong_open", "strong_close"):
            bold += 1 if kind == "strong_open" else -1
        elif kind in ("em_open", "em_close"):
            italic += 1 if kind == "em_open" else -1
        elif kind == "s_open":
            add("<strike>", "")
        elif kind == "s_close":
            add("</strike>", "")
        elif kind in ("code_inline", *MATH_INLINE, *MATH_BLOCKS):
            add(_styled(tok.content, code=True), tok.content)
        elif kind in ("softbreak", "hardbreak"):
            lines.append(_Line([], []))
        elif kind == "link_open":
            links.append(
                (str(tok.attrGet("href") or ""), len(lines) - 1, len("".join(lines[-1].plain)))
            )
        elif kind == "link_close" and links:
            href, line, start = links.pop()
            shown = "".join(lines[-1].plain)[start:] if line == len(lines) - 1 else ""
            bare = href.removeprefix("mailto:")
            if shown not in (href, bare):  # an autolink already shows its URL
                add(f'<font color="#5f6368">{_styled(f" ({href})")}</font>', f" ({href})")
        elif kind == "image":
            alt = "".join(c.content for c in tok.children or []) or "image"
            src = str(tok.attrGet("src") or "")
            add(_styled(f"[{alt}] ({src})"), f"[{alt}] ({src})")
        elif kind == "html_inline":  # a task list's checkbox: the only HTML the parser makes
            box = "[x] " if "checked" in tok.content else "[ ] "
            add(_styled(box, code=True), box)
        else:
            add(_styled(tok.content), tok.content)
    return lines


@lru_cache(maxsize=256)
def _md_style(
    base: str, indent: int, quote: bool, shaped: bool, size: float = 0.0
) -> ParagraphStyle:
    st = _styles()
    parent = {
        "body": st.body_shaped if shaped else st.body,
        "code": st.code_shaped if shaped else st.code,
    }[base]
    extra: dict[str, Any] = {}
    if size:
        extra = {"fontSize": size, "leading": size * 1.3, "spaceBefore": 6, "spaceAfter": 2}
    if quote:
        extra["textColor"] = colors.HexColor("#5f6368")
    return ParagraphStyle(
        f"ck-md-{base}-{indent}-{int(quote)}-{int(shaped)}-{size}",
        parent=parent,
        leftIndent=_INDENT * indent,
        bulletIndent=max(_INDENT * indent - 11, 0),
        bulletFontName=BASE_FONT,
        spaceBefore=extra.pop("spaceBefore", 2 if base == "body" else parent.spaceBefore),
        spaceAfter=extra.pop("spaceAfter", 2 if base == "body" else parent.spaceAfter),
        **extra,
    )


def _md_paragraphs(
    inline: Any, width: float, *, indent: int, quote: bool, bullet: str | None, size: float = 0.0
) -> list[Flowable]:
    lines = _inline_lines(inline.children or [])
    plain = "\n".join("".join(line.plain) for line in lines)
    if needs_bidi(plain) or any(len("".join(line.plain)) > LINE_MAX_CHARS for line in lines):
        # Right-to-left text is ordered (and long lines cut) by the plain layout.
        st = _styles()
        inner = width - _INDENT * indent
        paras = _text_paragraphs(plain, inner, st.body, st.body_shaped, st.body_rtl)
        return [_Indented(p, _INDENT * indent) for p in paras]
    if size:  # a heading: bold where the bold face has the chars
        lines = _inline_lines(_bolden(inline.children or []))
    style = _md_style("body", indent, quote, needs_shaping(plain), size)
    out: list[Flowable] = []
    for n, group in enumerate(_groups(["".join(line.markup) or "\xa0" for line in lines])):
        out.append(Paragraph("<br/>".join(group), style, bulletText=bullet if n == 0 else None))
    return out


def _bolden(children: list[Any]) -> list[Any]:
    return [Token("strong_open", "strong", 1), *children, Token("strong_close", "strong", -1)]


class _Indented(Flowable):  # type: ignore[misc]
    """A flowable moved right by ``indent`` points (a list item's or a quote's)."""

    def __init__(self, inner: Flowable, indent: float) -> None:
        super().__init__()
        self.inner = inner
        self.indent = indent

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        _, h = self.inner.wrap(avail_width - self.indent, avail_height)
        self.width, self.height = avail_width, h
        return avail_width, h

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        parts = self.inner.split(avail_width - self.indent, avail_height)
        return [_Indented(p, self.indent) for p in parts]

    def getSpaceBefore(self) -> float:
        return float(self.inner.getSpaceBefore())

    def getSpaceAfter(self) -> float:
        return float(self.inner.getSpaceAfter())

    def draw(self) -> None:
        self.inner.drawOn(self.canv, self.indent, 0)


def _code_flowables(code: str, *, indent: int) -> list[Flowable]:
    lines = [_styled(preserve_spaces(ln), code=True) or "\xa0" for ln in _bounded_lines(code)]
    style = _md_style("code", indent, False, needs_shaping(code))
    return [Paragraph("<br/>".join(group), style) for group in _groups(lines)]


def _table_flowables(
    rows: list[list[tuple[str, str, str]]], header: int, width: float
) -> list[Flowable]:
    """Rows of (markup, align, plain text) cells as Tables of at most _TABLE_ROWS rows
    each, the header repeated on each."""
    columns = max(len(row) for row in rows)
    col_width = width / columns
    st = _styles()
    cell = ParagraphStyle("ck-md-cell", parent=st.body, fontSize=9, leading=12)
    cell_shaped = ParagraphStyle("ck-md-cell-shaped", parent=cell, shaping=1)
    aligns = {"right": TA_RIGHT, "center": 1}

    def para(markup: str, align: str, plain: str) -> Paragraph:
        style = cell_shaped if needs_shaping(plain) else cell
        if align in aligns:
            style = ParagraphStyle(f"{style.name}-{align}", parent=style, alignment=aligns[align])
        return Paragraph(markup or "\xa0", style)

    grid = [
        [para(m, a, p) for m, a, p in row] + [Paragraph("\xa0", cell)] * (columns - len(row))
        for row in rows
    ]
    head, body = grid[:header], grid[header:]
    out: list[Flowable] = []
    for start in range(0, max(len(body), 1), _TABLE_ROWS):
        chunk = head + body[start : start + _TABLE_ROWS]
        table = Table(chunk, colWidths=[col_width] * columns, repeatRows=len(head), hAlign="LEFT")
        commands: list[tuple[Any, ...]] = [
            ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#c4c7cf")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]
        if head:
            commands.append(("BACKGROUND", (0, 0), (-1, len(head) - 1), colors.HexColor("#f1f3f4")))
        table.setStyle(TableStyle(commands))
        table.spaceBefore = table.spaceAfter = 4
        out.append(table)
    return out


def _markdown_flowables(content: str, width: float) -> list[Flowable]:
    """A Markdown message as flowables (see the module's docstring)."""
    tokens = parse(content)
    out: list[Flowable] = []
    lists: list[list[int]] = []  # per open list: [ordered, count]
    quote = 0
    bullet: str | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        indent = len(lists) + quote
        if kind == "heading_open":
            size = _HEADING_SIZES.get(int(tok.tag[1:]), 10.5)
            out += _md_paragraphs(
                tokens[i + 1], width, indent=indent, quote=quote > 0, bullet=None, size=size
            )
            i += 3
            continue
        if kind == "paragraph_open":
            out += _md_paragraphs(
                tokens[i + 1], width, indent=indent, quote=quote > 0, bullet=bullet
            )
            bullet = None
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrGet("start") or 1) if kind == "ordered_list_open" else 1
            lists.append([int(kind == "ordered_list_open"), start - 1])
        elif kind in ("bullet_list_close", "ordered_list_close") and lists:
            lists.pop()
        elif kind == "list_item_open" and lists:
            lists[-1][1] += 1
            bullet = f"{lists[-1][1]}." if lists[-1][0] else "•"
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote = max(quote - 1, 0)
        elif kind in ("fence", "code_block"):
            out += _code_flowables(tok.content.removesuffix("\n"), indent=indent)
        elif kind in MATH_BLOCKS:
            out += _code_flowables(tok.content.strip("\n"), indent=indent)
        elif kind == "hr":
            out.append(
                HRFlowable(
                    width="100%",
                    thickness=0.5,
                    color=colors.HexColor("#c4c7cf"),
                    spaceBefore=4,
                    spaceAfter=4,
                )
            )
        elif kind == "table_open":
            rows: list[list[tuple[str, str, str]]] = []
            header = 0
            i += 1
            while i < len(tokens) and tokens[i].type != "table_close":
                t = tokens[i]
                if t.type == "tr_open":
                    rows.append([])
                elif t.type in ("th_open", "td_open") and rows:
                    align = str(t.attrGet("class") or t.attrGet("style") or "")
                    align = next((a for a in ("right", "center") if a in align), "left")
                    lines = (
                        _inline_lines(tokens[i + 1].children or [])
                        if tokens[i + 1].type == "inline"
                        else []
                    )
                    if t.type == "th_open":
                        lines = _inline_lines(_bolden(tokens[i + 1].children or []))
                        header = len(rows)
                    markup = "<br/>".join("".join(line.markup) for line in lines)
                    plain = "\n".join("".join(line.plain) for line in lines)
                    rows[-1].append((markup, align, plain))
                i += 1
            if rows:
                table = _table_flowables(rows, header, width - _INDENT * indent)
                out += [_Indented(t, _INDENT * indent) if indent else t for t in table]
        i += 1
    return out


def _image_flowable(path: Path, width: float, st: _Styles) -> Flowable:
    try:
        iw, ih = ImageReader(str(path)).getSize()  # reads and checks the file now
        if iw <= 0 or ih <= 0:
            raise ValueError("empty image")
        scale = min(width / iw, _IMAGE_MAX_HEIGHT / ih, 1.0)  # shrink to fit, never blow up
        # By file name, read again when drawn (lazy), so pictures are not all held at once.
        img = Image(str(path), width=iw * scale, height=ih * scale, hAlign="LEFT", lazy=1)
        img.spaceBefore = img.spaceAfter = 4
        return img
    except Exception:  # missing, unreadable or corrupt: say so instead of failing the export
        return Paragraph("[image]", st.meta)


def _message_flowables(msg: PdfMessage, width: float, st: _Styles) -> list[Flowable]:
    role = msg.role.lower()
    color = _ROLE_COLORS.get(role, _OTHER_COLOR)
    label = _ROLE_LABELS.get(role) or (msg.role.strip() or "Message")
    label_markup = runs_markup(itemize_text(label))
    heading = Paragraph(
        f'<font color="{color.hexval()}">{label_markup}</font>'
        f'<font size="8" color="#5f6368">\xa0\xa0{_fmt_dt(msg.created_at)}'
        f"\xa0\xa0#{msg.seq}</font>",
        st.heading,
    )
    out: list[Flowable] = [_Barred(heading, color)]
    if role != "user":
        out += [_Barred(f, color) for f in _markdown_flowables(msg.content, width)]
        if msg.image_path is not None:
            out.append(_Barred(_image_flowable(msg.image_path, width, st), color))
        return out
    for is_code, block in _blocks(msg.content):
        if is_code:
            lines = [
                runs_markup(itemize_text(preserve_spaces(ln))) or "\xa0"
                for ln in _bounded_lines(block)
            ]
            style = st.code_shaped if needs_shaping(block) else st.code
            for group in _groups(lines):
                out.append(_Barred(Paragraph("<br/>".join(group), style), color))
        else:
            for para in _text_paragraphs(block, width, st.body, st.body_shaped, st.body_rtl):
                out.append(_Barred(para, color))
    if msg.image_path is not None:
        out.append(_Barred(_image_flowable(msg.image_path, width, st), color))
    return out


def _header_flowables(conv: PdfConversation, width: float, st: _Styles) -> list[Flowable]:
    title = conv.title.strip() or "Untitled conversation"
    out: list[Flowable] = []
    title_line = " ".join(title.split())
    if needs_bidi(title_line):
        vis, is_rtl = bidi_lines(title_line, st.title.fontSize, width * 0.98)
        out.append(Paragraph("<br/>".join(vis), st.title_rtl if is_rtl else st.title))
    else:
        out.append(Paragraph(runs_markup(itemize_text(title_line)), st.title))
    meta = [
        f"Created: {_fmt_dt(conv.created_at)}",
        f"Last activity: {_fmt_dt(conv.last_activity_at)}",
    ]
    if conv.archived_at is not None:
        meta.append(f"Archived: {_fmt_dt(conv.archived_at)}")
    meta.append(f"Messages: {conv.message_count}")
    if conv.other_versions > 0:
        plural = "s" if conv.other_versions != 1 else ""
        meta.append(
            f"{conv.other_versions} other version{plural} kept on other branches (not shown)"
        )
    out.append(Paragraph(escape("  ·  ".join(meta)), st.meta))
    out.append(Paragraph("Session ID: " + runs_markup(itemize_text(conv.session_id)), st.meta))
    out.append(Spacer(1, 4))
    return out


def _footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
    canvas.saveState()
    canvas.setFont(BASE_FONT, 8)
    canvas.setFillColor(colors.HexColor("#5f6368"))
    canvas.drawCentredString(doc.pagesize[0] / 2, 1.0 * cm, f"Page {doc.page}")
    canvas.restoreState()


def _pdf_title(title: str) -> str:
    # Document metadata: strip controls, keep it short.
    clean = "".join(ch for ch in title if unicodedata.category(ch)[0] != "C")
    clean = " ".join(clean.split())
    return clean[: grapheme_floor(clean, 200)] or "Conversation"


class _BudgetedDoc(SimpleDocTemplate):  # type: ignore[misc]
    """Stops laying out once past its page or time budget, and ends with a note instead."""

    def __init__(self, *args: Any, budget: PdfBudget, note: Flowable, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.deadline = time.monotonic() + budget.max_seconds
        self.note = note
        self.truncated = False

    def handle_flowable(self, flowables: list[Flowable]) -> None:
        started = getattr(self, "frame", None) is not None  # the first page is set up
        if (
            started
            and not self.truncated
            and (self.page > self.budget.max_pages or time.monotonic() > self.deadline)
        ):
            self.truncated = True
            flowables[:] = [self.note]
        super().handle_flowable(flowables)


def _truncation_note(st: _Styles, budget: PdfBudget) -> Flowable:
    return Paragraph(
        escape(
            "This PDF stops here: the conversation is longer than one PDF export holds "
            f"(at most {budget.max_pages} pages, {budget.max_seconds:g} seconds of layout). "
            "Export it as JSON to get every message."
        ),
        st.heading,
    )


def render_conversation_pdf(
    conversation: PdfConversation,
    messages: Iterable[PdfMessage],
    out: BinaryIO,
    *,
    budget: PdfBudget | None = None,
) -> bool:
    """Write ``conversation`` with ``messages`` (any iterable, consumed once) as PDF.

    Layout is linear in the size of the text; past the budget's pages or seconds the PDF
    ends with a note. Returns whether it was cut short. CPU-bound: call it in a worker
    thread (the export services do).
    """
    budget = budget or PdfBudget()
    st = _styles()
    note = _truncation_note(st, budget)
    doc = _BudgetedDoc(
        out,
        budget=budget,
        note=note,
        pagesize=A4,
        leftMargin=2 * cm,
        rightMargin=2 * cm,
        topMargin=2 * cm,
        bottomMargin=2 * cm,
        title=_pdf_title(conversation.title),
        author="Chatkeep",
        subject=f"Conversation {conversation.session_id}",
        creator="Chatkeep",
    )
    # Frame padding is 6pt a side; the bar and its gap take the rest.
    body_width = doc.width - 12 - _BAR_WIDTH - _BAR_GAP
    story: list[Flowable] = _header_flowables(conversation, doc.width - 12, st)
    header = len(story)
    # A page holds at most a few dozen flowables: stop reading messages well before the
    # page budget could be reached, so a huge conversation is never all held in memory.
    max_flowables = budget.max_pages * 60
    cut_short = False
    for msg in messages:
        if len(story) > max_flowables or time.monotonic() > doc.deadline:
            cut_short = True
            break
        story.extend(_message_flowables(msg, body_width, st))
    if len(story) == header:
        story.append(Paragraph("No messages.", st.meta))
    if cut_short:
        story.append(note)
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return cut_short or doc.truncated
