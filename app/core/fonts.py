"""The fonts shipped with the project (Noto from ``manimgx-fonts``, and Noto Sans SC,
KR, JP and TC from ``justmytype-intl-cjk``; all SIL Open Font License 1.1, see
docs/fonts.md), which chars each covers, and the split of a line of text into runs each
set in one font that covers it.

Used by the PDF export (reportlab) and by the image cards (Pillow); neither needs a
system font. Font files are located without importing their packages.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

from fontTools.ttLib import TTCollection, TTFont  # type: ignore[import-untyped]

__all__ = [
    "BASE_FONT",
    "CJK_FONT",
    "EMOJI_FONT",
    "FONT_FILES",
    "SYMBOLS_FONT",
    "TextRun",
    "cmap",
    "font_covers",
    "font_path",
    "is_joiner",
    "itemize_text",
]


class TextRun(NamedTuple):
    font: str  # a key of FONT_FILES
    text: str


BASE_FONT = "CK-NotoSans"
CJK_FONT = "CK-NotoSansSC"
SYMBOLS_FONT = "CK-NotoSansSymbols"
EMOJI_FONT = "CK-NotoEmoji"

_MANIMGX = "manimgx_fonts"
_CJK = "justmytype_intl_cjk"  # Google Fonts' Noto CJK: TrueType outlines, as reportlab needs

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
    CJK_FONT: (_CJK, "fonts/ofl/notosanssc/NotoSansSC[wght].ttf", 0),
    "CK-NotoSansKR": (_CJK, "fonts/ofl/notosanskr/NotoSansKR[wght].ttf", 0),
    "CK-NotoSansJP": (_CJK, "fonts/ofl/notosansjp/NotoSansJP[wght].ttf", 0),
    "CK-NotoSansTC": (_CJK, "fonts/ofl/notosanstc/NotoSansTC[wght].ttf", 0),
    SYMBOLS_FONT: (_MANIMGX, "NotoSansSymbols[wght].ttf", 0),
    EMOJI_FONT: (_MANIMGX, "NotoEmoji[wght].ttf", 0),
}


def _package_dir(module: str) -> Path:
    # find_spec locates the package without importing (running) it: we only need files.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"font package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def font_path(font: str) -> Path:
    """The file of ``font`` (a key of FONT_FILES); its index in a collection is FONT_FILES'."""
    module, rel, _ = FONT_FILES[font]
    return _package_dir(module) / rel


@cache
def cmap(font: str) -> frozenset[int]:
    """The code points ``font`` (a key of FONT_FILES) has glyphs for."""
    path = font_path(font)
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
    covered = cmap(font)
    return all(ord(c) in covered for c in char)


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


def is_joiner(ch: str) -> bool:
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
    if prefer_emoji and cp in cmap(EMOJI_FONT):
        return EMOJI_FONT
    for font in FONT_FILES:
        if cp in cmap(font):
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
        for cp in cmap(BASE_FONT)
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
        if is_joiner(ch):
            prev = next((fonts[j] for j in range(i - 1, -1, -1) if out_chars[j]), None)
            if prev == EMOJI_FONT and cp in _EMOJI_MODIFIERS:
                # The monochrome font has no toned forms: a swatch after the emoji reads
                # as garbage, so the tone is dropped and the plain emoji stays.
                out_chars[i] = ""
                fonts[i] = prev
                continue
            if prev is not None and cp in cmap(prev):
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
        elif prev is not None and cp in cmap(prev):
            chosen = prev
        else:
            nxt_font = next((fonts[j] for j in range(i + 1, n) if fonts[j] is not None), None)
            if nxt_font is not None and cp in cmap(nxt_font):
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
