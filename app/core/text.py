"""Text helpers shared by every domain: bidirectional order (python-bidi), cutting text
to a length at a word boundary, cleaning it for one line, and grapheme clusters.

Bidi: python-bidi (the Rust ``unicode-bidi`` crate) resolves the embedding level of
every char by the full Unicode Bidirectional Algorithm (UAX #9). Callers that draw text
in pieces (one font at a time: the PDF, the image cards) get the pieces of a line in
left-to-right order with their levels from :func:`visual_runs`; each piece at an odd
level reads right to left, which the shaper (harfbuzz) draws for right-to-left scripts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import NamedTuple

import regex
from bidi import get_base_level, get_display
from bidi.mirror import MIRRORED

__all__ = [
    "BIDI_CONTROLS",
    "ELLIPSIS",
    "VisualRun",
    "bidi_levels",
    "grapheme_floor",
    "graphemes",
    "has_rtl_script",
    "is_rtl",
    "mirror",
    "needs_bidi",
    "one_line",
    "shorten",
    "visual_order",
    "visual_runs",
]

ELLIPSIS = "\u2026"

# ---------------------------------------------------------------------------- bidi

# Explicit embeddings, overrides and isolates (UAX #9 X1-X8).
BIDI_CONTROLS = frozenset(chr(cp) for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_RTL_CLASSES = frozenset(("R", "AL", "AN"))

_LEVELS_START = "\n    levels: ["
_LEVELS_END = "\n    paragraphs:"
_LEVEL = re.compile(r"Level\(\s*(\d+),?\s*\)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class VisualRun(NamedTuple):
    """A piece of a line as drawn: its text in logical order, and its embedding level."""

    tag: str  # what the caller gave with the text (a font name)
    text: str
    level: int

    @property
    def rtl(self) -> bool:
        return self.level % 2 == 1


def needs_bidi(text: str) -> bool:
    """Whether ``text`` can hold anything but left-to-right order (else every level is 0)."""
    return any(
        ord(ch) >= 0x0590 and (unicodedata.bidirectional(ch) in _RTL_CLASSES or ch in BIDI_CONTROLS)
        for ch in text
    )


def has_rtl_script(text: str) -> bool:
    """Whether ``text`` has a letter of a right-to-left script (Hebrew, Arabic...)."""
    return any(ord(ch) >= 0x0590 and unicodedata.bidirectional(ch) in ("R", "AL") for ch in text)


def is_rtl(text: str) -> bool:
    """Whether ``text`` is a right-to-left paragraph: its first strong char is (UAX #9 P2)."""
    return bool(text) and get_base_level(text) == 1


def bidi_levels(text: str, *, rtl: bool | None = None) -> tuple[bool, list[int]]:
    """Whether ``text`` is a right-to-left paragraph, and the embedding level of each char.

    ``rtl`` forces the paragraph direction; by default it is that of the first strong
    char (UAX #9 P2-P3). python-bidi returns the levels only in its debug report (one per
    UTF-8 byte); tests/core/test_text.py fails if a python-bidi release changes it.
    """
    if not text:
        return bool(rtl), []
    # A lone surrogate cannot cross into Rust; U+FFFD has its class (ON) and UTF-8 length.
    safe = _SURROGATE.sub("\ufffd", text)
    report = str(get_display(safe, base_dir=None if rtl is None else "RL"[not rtl], debug=True))
    start = report.index(_LEVELS_START)
    end = report.index(_LEVELS_END, start)
    per_byte = [int(m) for m in _LEVEL.findall(report, start, end)]
    levels: list[int] = []
    offset = 0
    for ch in text:
        levels.append(per_byte[offset])
        offset += len(ch.encode("utf-8", "surrogatepass"))
    if offset != len(per_byte):
        raise RuntimeError("python-bidi reported levels for another text")
    para = re.search(
        r"paragraphs: \[\s*ParagraphInfo \{\s*range: [^,]*,\s*level: Level\(\s*(\d+)", report[end:]
    )
    para_rtl = bool(int(para.group(1)) % 2) if para else bool(rtl)
    return para_rtl, levels


def visual_runs(
    runs: Sequence[tuple[str, str]], levels: Sequence[int], *, rtl: bool
) -> list[VisualRun]:
    """The pieces of one line in left-to-right order (UAX #9 L1-L2).

    ``runs`` are (tag, text) in logical order; ``levels`` has one level per char of their
    joined text. Runs are split where the level changes and around each space, so every
    piece is one word (or one space) at one level.
    """
    base = 1 if rtl else 0
    pieces: list[VisualRun] = []
    pos = 0
    for tag, text in runs:
        start = 0
        for i, ch in enumerate(text):
            here = levels[pos + i]
            if i > start and (here != levels[pos + i - 1] or ch == " " or text[i - 1] == " "):
                pieces.append(VisualRun(tag, text[start:i], levels[pos + start]))
                start = i
        if start < len(text):
            pieces.append(VisualRun(tag, text[start:], levels[pos + start]))
        pos += len(text)
    if pos != len(levels):
        raise ValueError("one level per char is needed")
    # L1: whitespace at the end of the line goes back to the paragraph level.
    for i in range(len(pieces) - 1, -1, -1):
        if pieces[i].text.strip():
            break
        pieces[i] = pieces[i]._replace(level=base)
    # L2: from the highest level down to the lowest odd one, reverse every sequence of
    # pieces at that level or higher.
    if not pieces:
        return pieces
    highest = max(p.level for p in pieces)
    lowest_odd = min(p.level for p in pieces) | 1
    for level in range(highest, lowest_odd - 1, -1):
        i = 0
        while i < len(pieces):
            if pieces[i].level < level:
                i += 1
                continue
            j = i
            while j < len(pieces) and pieces[j].level >= level:
                j += 1
            pieces[i:j] = pieces[i:j][::-1]
            i = j
    return pieces


def mirror(text: str) -> str:
    """``text`` as a right-to-left run shows it when the shaper does not reverse it: char
    order reversed, paired brackets mirrored (UAX #9 L4)."""
    return "".join(MIRRORED.get(ch, ch) for ch in reversed(text))


def visual_order(line: str, *, rtl: bool | None = None) -> str:
    """``line`` in display order, char by char (right-to-left runs reversed and their
    brackets mirrored), as text extracted from a correctly drawn line reads."""
    is_rtl, levels = bidi_levels(line, rtl=rtl)
    pieces = visual_runs([("", line)], levels, rtl=is_rtl)
    return "".join(mirror(p.text) if p.rtl else p.text for p in pieces)


# ------------------------------------------------------------------------ graphemes

_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """The extended grapheme clusters of ``text`` (UAX #29): a letter with its marks, an
    emoji with its modifiers and joined emoji, a flag... each one string."""
    return _GRAPHEME.findall(text)


# A boundary lies between two chars when the one before is of these Grapheme_Cluster_Break
# classes and the one after of those (UAX #29: GB4, GB5, GB999; no rule that joins looks
# back past an `Other` or a control). Most text has one at nearly every position.
_OPENS_AFTER = regex.compile(r"[\p{GCB=Other}\p{GCB=Control}\p{GCB=LF}]")
_OPENS_BEFORE = regex.compile(r"[\p{GCB=Other}\p{GCB=Control}\p{GCB=CR}\p{GCB=LF}]")
_FLOOR_LOOKBACK = 64  # chars searched back for such a boundary before scanning from 0


def _sure_boundary(text: str, i: int) -> bool:
    return bool(_OPENS_AFTER.match(text, i - 1) and _OPENS_BEFORE.match(text, i))


def grapheme_floor(text: str, end: int) -> int:
    """The largest grapheme boundary of ``text`` at or before ``end``, so that
    ``text[:result]`` never ends inside a cluster (a mark, a ZWJ sequence, a flag).

    Clusters are scanned from the nearest position before ``end`` that is a boundary
    whatever came before it (usually ``end`` itself), not from the start of the text."""
    if end <= 0:
        return 0
    if end >= len(text):
        return len(text)
    start = 0
    for i in range(end, max(0, end - _FLOOR_LOOKBACK), -1):
        if _sure_boundary(text, i):
            start = i
            break
    if start == end:
        return end
    pos = start
    for match in _GRAPHEME.finditer(text, start):
        if match.end() > end:
            return pos
        pos = match.end()
    return pos


# ---------------------------------------------------------------------- one line


_LINE_BREAKING = frozenset(("Cc", "Cs", "Co", "Zl", "Zp"))


def one_line(text: str, *, fold: Callable[[str], str] | None = None) -> str:
    """``text`` on one line: NFC, controls, lone surrogates, private-use chars and line
    separators made spaces, runs of whitespace one space, ends stripped. ``fold``, when
    given, maps each other char (e.g. to a form the fonts have)."""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(
        " " if unicodedata.category(ch) in _LINE_BREAKING else (fold(ch) if fold else ch)
        for ch in text
    )
    return " ".join(kept.split())


# ------------------------------------------------------------------------ shorten


def shorten(
    text: str,
    limit: int,
    *,
    at_word: bool = True,
    strip: str = " ,.;:-",
) -> str:
    """``text`` if it has at most ``limit`` chars; else cut to ``limit`` chars with ``…``.

    The cut never splits a grapheme cluster; with ``at_word`` it goes back to the last
    space when one is in the second half; chars of ``strip`` are taken off its end.
    """
    if len(text) <= limit:
        return text
    end = grapheme_floor(text, max(0, limit - 1))
    cut = text[:end]
    if at_word and " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(strip) + ELLIPSIS


def normalize_email(email: str) -> str:
    """The form of an address for comparisons outside SQL: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


def is_unspaced(ch: str) -> bool:
    """A character that words are not made of: a CJK character (those scripts do not put
    spaces between words) or a symbol such as an emoji. Search matches these as
    substrings, and the blind index as grams."""
    if unicodedata.category(ch)[0] == "S":  # symbols: emoji, ©, ✓, …
        return True
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK ", "HIRAGANA", "KATAKANA", "HANGUL", "IDEOGRAPHIC", "BOPOMOFO"))
