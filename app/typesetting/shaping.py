"""Text for reportlab, in any script: faces registered once, words shaped fragment by
fragment, lines broken and ordered for right-to-left text.

reportlab has no font fallback, no paragraph-level bidi without ``rlbidi`` (not on
PyPI) and shapes a word with the first font of that word only. So here:

* every run of text is set in a font whose cmap covers all its chars (app/core/fonts.py);
* reportlab shapes (uharfbuzz) each fragment of a word on its own, which gives Devanagari
  reordering and Arabic joining and right-to-left order inside a piece
  (`_install_shaping_fix`, the one change made to reportlab);
* a line that holds right-to-left text is broken here and its pieces ordered by the levels
  of the Unicode bidi algorithm (python-bidi, app/core/text.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import uharfbuzz  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase import ttfonts as rl_ttfonts
from reportlab.platypus import paragraph as rl_paragraph

from app.core.fonts import BASE_FONT, FONT_FILES, TextRun, itemize_text
from app.core.fonts import font_path as _font_path
from app.core.text import bidi_levels, graphemes, has_rtl_script, mirror, visual_runs

# --------------------------------------------------------------------------- fonts

_font_lock = threading.RLock()
_registered: set[str] = set()
_hb_fonts: dict[str, Any] = {}


def register_font(font: str, path: Callable[[], Path], subfont_index: int = 0) -> None:
    """Register a face with reportlab under `font`, once per process, shaped fragment by
    fragment (`_install_shaping_fix`); `path` is asked only the first time."""
    if font in _registered:
        return
    with _font_lock:
        if font in _registered:
            return
        _install_shaping_fix()
        pdfmetrics.registerFont(
            rl_ttfonts.TTFont(font, str(path()), subfontIndex=subfont_index, shapable=True)
        )
        _registered.add(font)


def ensure_font(font: str) -> None:
    """Register one font of the fallback chain (app/core/fonts.py), once per process
    (lazily: the CJK faces are 10-18 MB)."""
    register_font(font, lambda: _font_path(font), FONT_FILES[font][2])


def _hb_font(font: str) -> Any:
    hbf = _hb_fonts.get(font)
    if hbf is None:
        with _font_lock:
            hbf = _hb_fonts.get(font)
            if hbf is None:
                face = uharfbuzz.Face(
                    uharfbuzz.Blob.from_file_path(str(_font_path(font))), FONT_FILES[font][2]
                )
                hbf = uharfbuzz.Font(face)
                _hb_fonts[font] = hbf
    return hbf


def _text_width(run: TextRun, size: float) -> float:
    """Shaped advance width in points (Arabic joined forms differ from isolated)."""
    hbf = _hb_font(run.font)
    buf = uharfbuzz.Buffer()
    buf.add_str(run.text)
    buf.guess_segment_properties()
    uharfbuzz.shape(hbf, buf, {"kern": True, "liga": True})
    upem = float(hbf.face.upem)
    return float(sum(p.x_advance for p in buf.glyph_positions)) * size / upem


_orig_shape_frag_word: Callable[..., Any] | None = None


def _shape_frag_word_per_font(w: Any, *args: Any, **kwargs: Any) -> Any:
    """Shape each fragment of a word separately.

    reportlab's shapeFragWord feeds a whole word to harfbuzz with the first piece's
    font, so "Hi😀" or "(مرحبا)" mixing fonts would get glyph ids from the wrong font
    (tofu), and two pieces of one font at different bidi levels would be reordered as
    one. Every fragment is one font at one level here (see _line_markup), so each is
    shaped on its own; one-fragment words go to the original unchanged.
    """
    orig = _orig_shape_frag_word
    assert orig is not None
    if isinstance(w, rl_ttfonts.ShapedFragWord) or len(w) <= 2:
        return orig(w, *args, **kwargs)
    groups: list[list[Any]] = []
    for item in w[1:]:
        if groups and hasattr(item[0], "cbDefn"):
            groups[-1].append(item)  # an inline object: stays with what precedes it
            continue
        groups.append([item])
    if len(groups) == 1:
        return orig(w, *args, **kwargs)
    total = 0.0
    items: list[Any] = []
    changed = False
    for group in groups:
        width = sum(
            pdfmetrics.stringWidth(s, f.fontName, f.fontSize)
            for f, s in group
            if not hasattr(f, "cbDefn")
        )
        sub = [width, *group]
        shaped = orig(sub, *args, **kwargs)
        changed = changed or shaped is not sub
        total += shaped[0]
        items.extend(shaped[1:])
    if not changed:
        return w
    return rl_ttfonts.makeShapedFragWord(w)([total, *items])


def _install_shaping_fix() -> None:
    """Make reportlab's Paragraph shape word by fragment (_shape_frag_word_per_font).

    reportlab 5.1 has no API for this: the one name its Paragraph calls,
    ``reportlab.platypus.paragraph.shapeFragWord``, is swapped, once per process and for
    this process's Paragraphs only through that name. test_pdf.py's
    test_a_word_mixing_fonts_is_shaped_font_by_font fails when a reportlab release
    changes what this relies on.
    """
    global _orig_shape_frag_word
    with _font_lock:
        current = rl_paragraph.shapeFragWord
        if getattr(current, "_chatkeep_per_font", False):
            return
        _orig_shape_frag_word = current
        _shape_frag_word_per_font._chatkeep_per_font = True  # type: ignore[attr-defined]
        rl_paragraph.shapeFragWord = _shape_frag_word_per_font


# ------------------------------------------------------------------------- markup


def runs_markup(runs: Iterable[TextRun]) -> str:
    parts: list[str] = []
    for run in runs:
        if run.font == BASE_FONT:
            parts.append(escape(run.text))
        else:
            ensure_font(run.font)
            parts.append(f'<font name="{run.font}">{escape(run.text)}</font>')
    return "".join(parts)


_MULTISPACE = re.compile(r"  +")


def preserve_spaces(line: str) -> str:
    """Keep indentation and runs of spaces (Paragraph collapses them) yet allow breaks."""
    line = line.replace("\t", "    ")
    stripped = line.lstrip(" ")
    lead = len(line) - len(stripped)
    body = _MULTISPACE.sub(lambda m: "\xa0" * (len(m.group()) - 1) + " ", stripped)
    return "\xa0" * lead + body


_COMPLEX_RANGES = (
    (0x0590, 0x08FF),  # Hebrew, Arabic, Syriac, Thaana, NKo...
    (0x0900, 0x0DFF),  # Indic
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x109F),  # Tibetan, Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0xFB1D, 0xFDFF),
    (0xFE70, 0xFEFF),
)


def needs_shaping(text: str) -> bool:
    # Shaping every word costs time; only complex scripts, marks and emoji sequences need it.
    for ch in text:
        cp = ord(ch)
        if cp < 0x0300:
            continue
        if cp == 0x200D or 0x1F3FB <= cp <= 0x1F3FF or 0x0300 <= cp <= 0x036F:
            return True
        for lo, hi in _COMPLEX_RANGES:
            if lo <= cp <= hi:
                return True
    return False


def _split_word(word: list[TextRun], size: float, max_width: float) -> list[list[TextRun]]:
    """Break an over-long word between clusters (marks stay with their base)."""
    pieces: list[list[TextRun]] = []
    current: list[TextRun] = []
    width = 0.0
    for run in word:
        for cl in graphemes(run.text):
            w = _text_width(TextRun(run.font, cl), size)
            if current and width + w > max_width:
                pieces.append(current)
                current, width = [], 0.0
            if current and current[-1].font == run.font:
                current[-1] = TextRun(run.font, current[-1].text + cl)
            else:
                current.append(TextRun(run.font, cl))
            width += w
    if current:
        pieces.append(current)
    return pieces


def _line_markup(runs: list[TextRun], levels: list[int], rtl: bool) -> str:
    """Markup of one line, its pieces in visual order (app/core/text.py, python-bidi).

    Each piece is its own fragment, so the shaper never joins two pieces of different
    levels: a piece of a right-to-left script is handed over in logical order (harfbuzz
    draws it right to left); any other piece at an odd level is reversed and mirrored here.
    """
    parts: list[str] = []
    for piece in visual_runs(runs, levels, rtl=rtl):
        text = piece.text
        if piece.rtl and not has_rtl_script(text):
            text = mirror(text)
        if piece.tag == BASE_FONT or text == " ":
            parts.append(escape(text))
        else:
            ensure_font(piece.tag)
            parts.append(f'<font name="{piece.tag}">{escape(text)}</font>')
    return "".join(parts).strip() or "\xa0"


def bidi_lines(line: str, size: float, max_width: float) -> tuple[list[str], bool]:
    """Break a line holding right-to-left text and order each line's pieces visually.

    Returns markup per visual line and whether the paragraph is right-to-left. Levels
    are resolved once for the whole paragraph (UAX #9), then each line is reordered.
    """
    words: list[tuple[int, list[TextRun]]] = []  # (offset in the itemized text, runs)
    pos = 0
    for raw in line.split(" "):
        if raw:
            runs = itemize_text(raw)
            words.append((pos, runs))
            pos += sum(len(r.text) for r in runs) + 1
    text = " ".join("".join(r.text for r in word) for _, word in words)
    rtl, levels = bidi_levels(text)
    ensure_font(BASE_FONT)
    space = pdfmetrics.stringWidth(" ", BASE_FONT, size)
    lines: list[list[tuple[int, list[TextRun]]]] = []
    current: list[tuple[int, list[TextRun]]] = []
    width = 0.0
    for offset, word in words:
        w = sum(_text_width(r, size) for r in word)
        if w > max_width:
            for piece in _split_word(word, size, max_width):
                if current:
                    lines.append(current)
                current = [(offset, piece)]
                offset += sum(len(r.text) for r in piece)
                width = sum(_text_width(r, size) for r in piece)
            continue
        if current and width + space + w > max_width:
            lines.append(current)
            current, width = [], 0.0
        width += (space if current else 0.0) + w
        current.append((offset, word))
    if current:
        lines.append(current)

    out: list[str] = []
    for ln in lines:
        line_runs: list[TextRun] = []
        for i, (_, wd) in enumerate(ln):
            if i:
                line_runs.append(TextRun(BASE_FONT, " "))
            line_runs.extend(wd)
        first = ln[0][0]
        last = ln[-1][0] + sum(len(r.text) for r in ln[-1][1])
        out.append(_line_markup(line_runs, levels[first:last], rtl))
    return out, rtl
