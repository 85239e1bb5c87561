"""Render a stored conversation to PDF (reportlab), for text in any script.

reportlab has no font fallback, no paragraph-level bidi without ``rlbidi`` (not on
PyPI) and shapes a word with the first font of that word only.  So this module:

* itemizes every line into runs, each set in a font whose cmap covers all its chars
  (Noto fonts from ``manimgx-fonts``, WenQuanYi Micro Hei from ``paperang-p2-fonts-cjk``
  for CJK, since every Noto CJK on PyPI is CFF-based, which reportlab cannot embed);
* lets reportlab shape (uharfbuzz) each single-font piece of a word, which gives
  Devanagari reordering and Arabic joining and right-to-left order inside a word;
* breaks lines that contain right-to-left text itself and orders the words of each
  line visually, the part of the Unicode bidi algorithm that reportlab would need
  ``rlbidi`` for.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import uharfbuzz  # type: ignore[import-untyped]
from fontTools.ttLib import TTCollection, TTFont  # type: ignore[import-untyped]
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase import ttfonts as rl_ttfonts
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Image, Paragraph, SimpleDocTemplate, Spacer
from reportlab.platypus import paragraph as rl_paragraph

__all__ = [
    "FONT_FILES",
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
    image_path: Path | None = None


@dataclass(frozen=True)
class PdfConversation:
    title: str
    session_id: str
    created_at: datetime
    last_activity_at: datetime
    archived_at: datetime | None
    message_count: int


class TextRun(NamedTuple):
    font: str  # reportlab font name, see FONT_FILES
    text: str


# --------------------------------------------------------------------------- fonts

BASE_FONT = "CK-NotoSans"
CJK_FONT = "CK-WQYMicroHei"
SYMBOLS_FONT = "CK-NotoSansSymbols"
EMOJI_FONT = "CK-NotoEmoji"

_MANIMGX = "manimgx_fonts"
_PAPERANG = "paperang_p2_fonts_cjk"

# reportlab name -> (distribution module, file inside it, index in a collection).
# Order is the fallback order: first font covering a char wins (emoji excepted).
FONT_FILES: dict[str, tuple[str, str, int]] = {
    BASE_FONT: (_MANIMGX, "NotoSans[wght].ttf", 0),
    "CK-NotoSansArabic": (_MANIMGX, "NotoSansArabic[wght].ttf", 0),
    "CK-NotoSansHebrew": (_MANIMGX, "NotoSansHebrew[wght].ttf", 0),
    "CK-NotoSansDevanagari": (_MANIMGX, "NotoSansDevanagari[wght].ttf", 0),
    "CK-NotoSansBengali": (_MANIMGX, "NotoSansBengali[wght].ttf", 0),
    "CK-NotoSansGurmukhi": (_MANIMGX, "NotoSansGurmukhi[wght].ttf", 0),
    "CK-NotoSansGujarati": (_MANIMGX, "NotoSansGujarati[wght].ttf", 0),
    "CK-NotoSansOriya": (_MANIMGX, "NotoSansOriya[wght].ttf", 0),
    "CK-NotoSansTamil": (_MANIMGX, "NotoSansTamil[wght].ttf", 0),
    "CK-NotoSansTelugu": (_MANIMGX, "NotoSansTelugu[wght].ttf", 0),
    "CK-NotoSansKannada": (_MANIMGX, "NotoSansKannada[wght].ttf", 0),
    "CK-NotoSansMalayalam": (_MANIMGX, "NotoSansMalayalam[wght].ttf", 0),
    "CK-NotoSansSinhala": (_MANIMGX, "NotoSansSinhala[wght].ttf", 0),
    "CK-NotoSansThai": (_MANIMGX, "NotoSansThai[wght].ttf", 0),
    "CK-NotoSansLao": (_MANIMGX, "NotoSansLao[wght].ttf", 0),
    "CK-NotoSansKhmer": (_MANIMGX, "NotoSansKhmer[wght].ttf", 0),
    "CK-NotoSansMyanmar": (_MANIMGX, "NotoSansMyanmar[wght].ttf", 0),
    "CK-NotoSansArmenian": (_MANIMGX, "NotoSansArmenian[wght].ttf", 0),
    "CK-NotoSansGeorgian": (_MANIMGX, "NotoSansGeorgian[wght].ttf", 0),
    "CK-NotoSansEthiopic": (_MANIMGX, "NotoSansEthiopic[wght].ttf", 0),
    CJK_FONT: (_PAPERANG, "fonts/wqy-microhei.ttc", 0),
    SYMBOLS_FONT: (_MANIMGX, "NotoSansSymbols[wght].ttf", 0),
    EMOJI_FONT: (_MANIMGX, "NotoEmoji[wght].ttf", 0),
}

_font_lock = threading.RLock()
_registered: set[str] = set()
_hb_fonts: dict[str, Any] = {}


def _package_dir(module: str) -> Path:
    # find_spec locates the package without importing (running) it: we only need files.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"font package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def _font_path(font: str) -> Path:
    module, rel, _ = FONT_FILES[font]
    return _package_dir(module) / rel


@cache
def _cmap(font: str) -> frozenset[int]:
    path = _font_path(font)
    index = FONT_FILES[font][2]
    if path.suffix.lower() in (".ttc", ".otc"):
        tt = TTCollection(str(path), lazy=True).fonts[index]
    else:
        tt = TTFont(str(path), lazy=True)
    try:
        return frozenset(tt.getBestCmap() or ())
    finally:
        tt.close()


def font_covers(font: str, char: str) -> bool:
    """Whether ``font`` (a key of FONT_FILES) has a glyph for every char of ``char``."""
    cmap = _cmap(font)
    return all(ord(c) in cmap for c in char)


def _ensure_font(font: str) -> None:
    """Register one font with reportlab, once per process (lazily: WQY is 5 MB)."""
    if font in _registered:
        return
    with _font_lock:
        if font in _registered:
            return
        _install_shaping_fix()
        path = _font_path(font)
        pdfmetrics.registerFont(
            rl_ttfonts.TTFont(font, str(path), subfontIndex=FONT_FILES[font][2], shapable=True)
        )
        _registered.add(font)


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
    """Shape each single-font piece of a word separately.

    reportlab's shapeFragWord feeds a whole word to harfbuzz with the first piece's
    font, so "Hi😀" or "(مرحبا)" mixing fonts would get glyph ids from the wrong font
    (tofu). Single-font words go to the original unchanged.
    """
    orig = _orig_shape_frag_word
    assert orig is not None
    if isinstance(w, rl_ttfonts.ShapedFragWord) or len(w) <= 2:
        return orig(w, *args, **kwargs)
    groups: list[list[Any]] = []
    last_font: object = None
    for item in w[1:]:
        frag = item[0]
        name = None if hasattr(frag, "cbDefn") else frag.fontName
        if groups and (name is None or name == last_font):
            groups[-1].append(item)
            continue
        groups.append([item])
        last_font = name
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
    global _orig_shape_frag_word
    with _font_lock:
        current = rl_paragraph.shapeFragWord
        if getattr(current, "_chatkeep_per_font", False):
            return
        _orig_shape_frag_word = current
        _shape_frag_word_per_font._chatkeep_per_font = True  # type: ignore[attr-defined]
        rl_paragraph.shapeFragWord = _shape_frag_word_per_font


# ------------------------------------------------------------------ itemization

_EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)
_TAGS = range(0xE0020, 0xE0080)


def _is_emoji_like(cp: int) -> bool:
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2B00 <= cp <= 0x2BFF
        or 0x2300 <= cp <= 0x23FF
        or 0x2190 <= cp <= 0x21FF
        or cp in (0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x3030, 0x303D)
    )


def _is_joiner(ch: str) -> bool:
    """Chars that belong to the preceding char's cluster (marks, ZWJ, selectors...)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")
        or cp in (0x200C, 0x200D, 0x20E3)
        or 0xFE00 <= cp <= 0xFE0F
        or 0xE0100 <= cp <= 0xE01EF
        or cp in _EMOJI_MODIFIERS
        or cp in _TAGS
    )


def _is_common(ch: str) -> bool:
    """Script-neutral chars (spaces, punctuation, ASCII digits): take a neighbour's font."""
    cat = unicodedata.category(ch)
    return cat[0] in "ZP" or ch.isspace() or (ch.isdigit() and ord(ch) < 0x80)


@lru_cache(maxsize=65536)
def _best_font(cp: int, prefer_emoji: bool) -> str | None:
    if prefer_emoji and cp in _cmap(EMOJI_FONT):
        return EMOJI_FONT
    for font in FONT_FILES:
        if cp in _cmap(font):
            return font
    return None


def _stand_in(ch: str) -> str:
    """Readable text for a char no bundled font has (never a tofu box)."""
    cp = ord(ch)
    name = unicodedata.name(ch, "")
    if name and _is_emoji_like(cp):
        return ":" + name.lower().replace(" ", "_").replace("-", "_") + ":"
    return f"[U+{cp:04X}]"


@lru_cache(maxsize=1)
def _base_plain_chars() -> frozenset[str]:
    """Chars the slow path would always put in the base font (for a fast path)."""
    return frozenset(
        chr(cp)
        for cp in _cmap(BASE_FONT)
        if cp >= 0x20
        and unicodedata.category(chr(cp)) not in ("Cc", "Cs", "Cf", "Mn", "Mc", "Me")
        and not _is_emoji_like(cp)
        and not 0xFE00 <= cp <= 0xFE0F
    )


def itemize_text(text: str) -> list[TextRun]:
    """Split one line of text into runs, each in a font that covers all its chars.

    Chars no font covers become a readable stand-in in the base font; invisible format
    chars nobody covers are dropped.
    """
    if not text:
        return []
    if _base_plain_chars().issuperset(text):
        return [TextRun(BASE_FONT, text)]  # most text: one run, no per-char work
    n = len(text)
    fonts: list[str | None] = [None] * n
    out_chars: list[str] = list(text)
    # Pass 1: strong chars pick their font; joiners follow their base char.
    for i, ch in enumerate(text):
        cp = ord(ch)
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat == "Cs":
            out_chars[i] = "" if cat == "Cc" else "[?]"
            fonts[i] = BASE_FONT
            continue
        if _is_joiner(ch):
            prev = next((fonts[j] for j in range(i - 1, -1, -1) if out_chars[j]), None)
            if prev == EMOJI_FONT and cp in _EMOJI_MODIFIERS:
                # The monochrome font has no toned forms: a swatch after the emoji reads
                # as garbage, so the tone is dropped and the plain emoji stays.
                out_chars[i] = ""
                fonts[i] = prev
                continue
            if prev is not None and cp in _cmap(prev):
                fonts[i] = prev
                continue
            if cat != "Mc" and cat != "Mn" and cat != "Me":
                out_chars[i] = ""  # invisible selector/joiner the font lacks: drop
                fonts[i] = prev or BASE_FONT
                continue
        if _is_common(ch):
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        prefer_emoji = (_is_emoji_like(cp) or nxt == "\ufe0f") and nxt != "\ufe0e"
        font = _best_font(cp, prefer_emoji)
        if font is None:
            if cat == "Cf":
                out_chars[i] = ""
                fonts[i] = BASE_FONT
            else:
                out_chars[i] = _stand_in(ch)
                fonts[i] = BASE_FONT
        else:
            fonts[i] = font
    # Pass 2: neutral chars join the previous strong font, else the next, else own best.
    for i, ch in enumerate(text):
        if fonts[i] is not None:
            continue
        cp = ord(ch)
        chosen: str | None = None
        prev = next((fonts[j] for j in range(i - 1, -1, -1) if fonts[j] is not None), None)
        if ch.isspace() and prev == EMOJI_FONT:
            chosen = BASE_FONT  # the emoji font's space is far wider than a text space
        elif prev is not None and cp in _cmap(prev):
            chosen = prev
        else:
            nxt_font = next((fonts[j] for j in range(i + 1, n) if fonts[j] is not None), None)
            if nxt_font is not None and cp in _cmap(nxt_font):
                chosen = nxt_font
        if chosen is None:
            chosen = _best_font(cp, False)
        if chosen is None:
            out_chars[i] = _stand_in(ch)
            chosen = BASE_FONT
        fonts[i] = chosen
    runs: list[TextRun] = []
    for ch, font in zip(out_chars, fonts, strict=True):
        if not ch:
            continue
        assert font is not None
        if runs and runs[-1].font == font:
            runs[-1] = TextRun(font, runs[-1].text + ch)
        else:
            runs.append(TextRun(font, ch))
    return runs


# ------------------------------------------------------------------------- markup


def _escape(text: str) -> str:
    # Paragraph mini-markup: user text must never become tags or entities.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _runs_markup(runs: Iterable[TextRun]) -> str:
    parts: list[str] = []
    for run in runs:
        if run.font == BASE_FONT:
            parts.append(_escape(run.text))
        else:
            _ensure_font(run.font)
            parts.append(f'<font name="{run.font}">{_escape(run.text)}</font>')
    return "".join(parts)


_MULTISPACE = re.compile(r"  +")


def _preserve_spaces(line: str) -> str:
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


def _needs_shaping(text: str) -> bool:
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


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text if ord(ch) >= 0x0590)


def _strong_direction(text: str) -> str | None:
    for ch in text:
        bidi = unicodedata.bidirectional(ch)
        if bidi == "L":
            return "L"
        if bidi in ("R", "AL"):
            return "R"
    return None


def _split_word(word: list[TextRun], size: float, max_width: float) -> list[list[TextRun]]:
    """Break an over-long word between clusters (marks stay with their base)."""
    pieces: list[list[TextRun]] = []
    current: list[TextRun] = []
    width = 0.0
    for run in word:
        cluster = ""
        clusters: list[str] = []
        for ch in run.text:
            if cluster and not _is_joiner(ch):
                clusters.append(cluster)
                cluster = ""
            cluster += ch
        if cluster:
            clusters.append(cluster)
        for cl in clusters:
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


def _edge_split(word: list[TextRun], rtl_base: bool) -> list[list[TextRun]]:
    """Split edge punctuation off a word so the bidi pass can place it on its own.

    "123." in a right-to-left line shows as ".123"; "نص," before Latin in a
    left-to-right line keeps its comma on the Latin side. Right-to-left words in
    right-to-left lines stay whole, as harfbuzz orders their punctuation itself; when a
    right-to-left word is split, its punctuation moves to the base font, because two
    pieces in one font would be shaped as one buffer and reordered again.
    """
    text = "".join(r.text for r in word)
    is_rtl_word = _strong_direction(text) == "R"
    if is_rtl_word and rtl_base:
        return [word]
    neutral = ("ON", "CS", "WS")
    lead = 0
    while lead < len(text) and unicodedata.bidirectional(text[lead]) in neutral:
        lead += 1
    trail_start = len(text)
    while trail_start > lead and unicodedata.bidirectional(text[trail_start - 1]) in neutral:
        trail_start -= 1
    if lead == 0 and trail_start == len(text):
        return [word]
    if is_rtl_word and not font_covers(BASE_FONT, text[:lead] + text[trail_start:]):
        return [word]
    out: list[list[TextRun]] = []
    for start, end in ((0, lead), (lead, trail_start), (trail_start, len(text))):
        if start >= end:
            continue
        edge = start != lead
        piece: list[TextRun] = []
        pos = 0
        for run in word:
            lo, hi = max(start, pos), min(end, pos + len(run.text))
            if lo < hi:
                font = BASE_FONT if edge and is_rtl_word else run.font
                piece.append(TextRun(font, run.text[lo - pos : hi - pos]))
            pos += len(run.text)
        out.append(piece)
    return out


def _bidi_lines(line: str, size: float, max_width: float) -> tuple[list[str], bool]:
    """Break a line holding right-to-left text and order each line's words visually.

    Returns markup per visual line and whether the paragraph is right-to-left.
    Inside a word harfbuzz orders glyphs itself (per script run).
    """
    rtl_base = _strong_direction(line) == "R"
    words: list[list[TextRun]] = []
    for raw in line.split(" "):
        if raw:
            words.append(itemize_text(raw))
    _ensure_font(BASE_FONT)
    space = pdfmetrics.stringWidth(" ", BASE_FONT, size)
    lines: list[list[list[TextRun]]] = []
    current: list[list[TextRun]] = []
    width = 0.0
    for word in words:
        w = sum(_text_width(r, size) for r in word)
        if w > max_width:
            for piece in _split_word(word, size, max_width):
                if current:
                    lines.append(current)
                current = [piece]
                width = sum(_text_width(r, size) for r in piece)
            continue
        if current and width + space + w > max_width:
            lines.append(current)
            current, width = [], 0.0
        width += (space if current else 0.0) + w
        current.append(word)
    if current:
        lines.append(current)

    out: list[str] = []
    base = "R" if rtl_base else "L"
    space_token = [TextRun(BASE_FONT, " ")]
    for ln in lines:
        tokens: list[list[TextRun]] = []
        for i, wd in enumerate(ln):
            if i:
                tokens.append(space_token)
            tokens.extend(_edge_split(wd, rtl_base))
        dirs = [_strong_direction("".join(r.text for r in tok)) for tok in tokens]
        resolved: list[str] = []
        for i, d in enumerate(dirs):
            if d is None:
                # Neutrals between equal directions take it, else the paragraph's (UBA N1/N2).
                before = next((x for x in reversed(dirs[:i]) if x), base)
                after = next((x for x in dirs[i + 1 :] if x), base)
                d = before if before == after else base
            resolved.append(d)
        segments: list[tuple[str, list[list[TextRun]]]] = []
        for tok, d in zip(tokens, resolved, strict=True):
            if segments and segments[-1][0] == d:
                segments[-1][1].append(tok)
            else:
                segments.append((d, [tok]))
        if rtl_base:
            segments.reverse()
        visual: list[list[TextRun]] = []
        for d, seg in segments:
            visual.extend(reversed(seg) if d == "R" else seg)
        out.append("".join(_runs_markup(tok) for tok in visual).strip() or "\xa0")
    return out, rtl_base


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
    _ensure_font(BASE_FONT)
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
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # stored naive values are UTC by convention
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


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

    for raw in text.split("\n"):
        line = _preserve_spaces(raw)
        if _has_rtl(line):
            flush()
            # 2% slack so reportlab never re-wraps a line measured here.
            vis, is_rtl = _bidi_lines(line, plain.fontSize, width * 0.98)
            out.append(Paragraph("<br/>".join(vis), rtl if is_rtl else shaped))
            continue
        pending.append(_runs_markup(itemize_text(line)) if line.strip() else "\xa0")
        pending_shaped = pending_shaped or _needs_shaping(line)
    flush()
    return out


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


def _image_flowable(path: Path, width: float, st: _Styles) -> Flowable:
    try:
        reader = ImageReader(str(path))
        iw, ih = reader.getSize()
        if iw <= 0 or ih <= 0:
            raise ValueError("empty image")
        scale = min(width / iw, _IMAGE_MAX_HEIGHT / ih)
        img = Image(reader, width=iw * scale, height=ih * scale, hAlign="LEFT")
        img._restrictSize(width, _IMAGE_MAX_HEIGHT)
        return img
    except Exception:  # missing, unreadable or corrupt: say so instead of failing the export
        return Paragraph("[image]", st.meta)


def _message_flowables(msg: PdfMessage, width: float, st: _Styles) -> list[Flowable]:
    role = msg.role.lower()
    color = _ROLE_COLORS.get(role, _OTHER_COLOR)
    label = _ROLE_LABELS.get(role) or (msg.role.strip() or "Message")
    label_markup = _runs_markup(itemize_text(label))
    heading = Paragraph(
        f'<font color="{color.hexval()}">{label_markup}</font>'
        f'<font size="8" color="#5f6368">\xa0\xa0{_fmt_dt(msg.created_at)}'
        f"\xa0\xa0#{msg.seq}</font>",
        st.heading,
    )
    out: list[Flowable] = [_Barred(heading, color)]
    for is_code, block in _blocks(msg.content):
        if is_code:
            lines = [
                _runs_markup(itemize_text(_preserve_spaces(ln))) or "\xa0"
                for ln in block.split("\n")
            ]
            style = st.code_shaped if _needs_shaping(block) else st.code
            out.append(_Barred(Paragraph("<br/>".join(lines), style), color))
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
    if _has_rtl(title_line):
        vis, is_rtl = _bidi_lines(title_line, st.title.fontSize, width * 0.98)
        out.append(Paragraph("<br/>".join(vis), st.title_rtl if is_rtl else st.title))
    else:
        out.append(Paragraph(_runs_markup(itemize_text(title_line)), st.title))
    meta = [
        f"Created: {_fmt_dt(conv.created_at)}",
        f"Last activity: {_fmt_dt(conv.last_activity_at)}",
    ]
    if conv.archived_at is not None:
        meta.append(f"Archived: {_fmt_dt(conv.archived_at)}")
    meta.append(f"Messages: {conv.message_count}")
    out.append(Paragraph(_escape("  ·  ".join(meta)), st.meta))
    out.append(Paragraph("Session ID: " + _runs_markup(itemize_text(conv.session_id)), st.meta))
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
    return " ".join(clean.split())[:200] or "Conversation"


def render_conversation_pdf(
    conversation: PdfConversation, messages: Iterable[PdfMessage], out: BinaryIO
) -> None:
    """Write ``conversation`` with ``messages`` (any iterable, consumed once) as PDF."""
    st = _styles()
    doc = SimpleDocTemplate(
        out,
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
    for msg in messages:
        story.extend(_message_flowables(msg, body_width, st))
    if len(story) <= 4:  # header only
        story.append(Paragraph("No messages.", st.meta))
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
