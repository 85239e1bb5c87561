"""Local image rendering for drafts: a titled card as PNG bytes (Pillow only).

Deterministic for the same inputs on the same Pillow build: the palette and the
decoration come from a stable hash of ``seed``. Any Unicode title is accepted and
rendering never fails.

Text is set in the fonts the project ships (app/core/fonts.py): each word is split
into runs in a font that covers every char of the run, and each run is shaped by
libraqm (Devanagari reordering, Arabic joining, emoji sequences in the monochrome Noto
Emoji). Lines are ordered by the Unicode bidi algorithm (python-bidi, app/core/text.py),
and runs at right-to-left levels are drawn right-to-left. Chars no shipped font has show
as a readable ``[U+XXXX]``, never a box.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from app.core.fonts import (
    BASE_FONT,
    FONT_FILES,
    cmap,
    font_path,
    itemize_text,
)
from app.core.text import (
    BIDI_CONTROLS,
    ELLIPSIS,
    bidi_levels,
    grapheme_floor,
    graphemes,
    has_rtl_script,
    is_rtl,
    one_line,
    visual_runs,
)

__all__ = ["PALETTES", "CardRun", "card_runs", "render_card_png"]

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# (gradient start, gradient end, accent): deep colours, so white text stays legible.
PALETTES: tuple[tuple[RGB, RGB, RGB], ...] = (
    ((32, 0, 92), (176, 38, 120), (255, 200, 80)),
    ((10, 40, 90), (0, 128, 150), (120, 230, 210)),
    ((118, 20, 24), (214, 96, 28), (255, 220, 120)),
    ((14, 56, 40), (52, 136, 76), (200, 240, 150)),
    ((24, 26, 38), (66, 70, 110), (140, 180, 255)),
    ((66, 20, 110), (30, 86, 196), (150, 220, 255)),
    ((128, 26, 74), (226, 84, 104), (255, 214, 200)),
    ((18, 48, 106), (104, 56, 164), (255, 170, 220)),
)

_MIN_SIDE, _MAX_SIDE = 100, 4096
_FOOTER = "Chatkeep"
_BOLD = 700  # on the weight axis of the variable Noto fonts

# FreeType faces are not safe to use from two threads at once, and cards are drawn in
# worker threads: the text stage (font loading, measuring, drawing) takes this lock.
_text_lock = threading.Lock()


@dataclass(frozen=True)
class CardRun:
    """A piece of a line as drawn: one font, one direction, in left-to-right order."""

    font: str  # a key of app.core.fonts.FONT_FILES
    text: str
    rtl: bool


# --------------------------------------------------------------------------- fonts


@lru_cache(maxsize=16)
def _default_font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError, AttributeError):  # pragma: no cover - old Pillow
        return ImageFont.load_default()


@lru_cache(maxsize=256)
def _face(font: str, size: int, bold: bool) -> Font:
    """A shipped font at ``size`` px, loaded once (Pillow's default if it cannot load)."""
    try:
        face = ImageFont.truetype(
            str(font_path(font)),
            size,
            index=FONT_FILES[font][2],
            layout_engine=ImageFont.Layout.RAQM,
        )
    except (OSError, RuntimeError, KeyError, ValueError):
        return _default_font(size)
    if bold:
        # A font without a weight axis keeps its one weight.
        with contextlib.suppress(OSError, ValueError):
            face.set_variation_by_axes([_BOLD])
    return face


@lru_cache(maxsize=8192)
def _run_width(font: str, size: int, bold: bool, text: str, rtl: bool) -> float:
    face = _face(font, size, bold)
    try:
        return float(face.getlength(text, direction="rtl" if rtl else "ltr"))
    except Exception:  # e.g. no libraqm: measure unshaped
        try:
            return float(face.getlength(text))
        except Exception:
            return float(len(text) * size * 0.6)


# ---------------------------------------------------------------------- text runs


@lru_cache(maxsize=1)
def _covered() -> frozenset[int]:
    return frozenset().union(*(cmap(font) for font in FONT_FILES))


def _fold(ch: str) -> str:
    """A char no shipped font has, by its compatibility form if fonts have that (styled
    maths letters, circled digits...); else unchanged, for a readable stand-in."""
    if ord(ch) < 0x2000 or ord(ch) in _covered():
        return ch
    folded = unicodedata.normalize("NFKC", ch)
    return folded if folded != ch and all(ord(c) in _covered() for c in folded) else ch


# Explicit embeddings, overrides and isolates: a title cannot flip its text around.
_BIDI_CONTROLS = dict.fromkeys(ord(ch) for ch in BIDI_CONTROLS)


def _clean(text: str, limit: int) -> str:
    """Drop control characters, lone surrogates and the like; collapse whitespace; cut to
    ``limit`` chars at a grapheme boundary."""
    line = one_line(text.translate(_BIDI_CONTROLS), fold=_fold)
    return line[: grapheme_floor(line, limit)]


@lru_cache(maxsize=4096)
def _word_runs(word: str) -> tuple[CardRun, ...]:
    """A word's runs in logical order, each with the direction it is shaped in."""
    return tuple(CardRun(r.font, r.text, has_rtl_script(r.text)) for r in itemize_text(word))


def _word_width(word: str, size: int, bold: bool) -> float:
    return sum(_run_width(r.font, size, bold, r.text, r.rtl) for r in _word_runs(word))


def _space_width(size: int, bold: bool) -> float:
    return _run_width(BASE_FONT, size, bold, " ", False)


def _line_width(line: str, size: int, bold: bool) -> float:
    words = [w for w in line.split(" ") if w]
    gaps = max(0, len(words) - 1) * _space_width(size, bold)
    return gaps + sum(_word_width(w, size, bold) for w in words)


def _visual_runs(line: str, rtl_base: bool) -> list[CardRun | None]:
    """The line's runs left to right; None stands for a space between words.

    Levels come from the Unicode bidi algorithm (app/core/text.py, python-bidi), each run
    is one font at one level; libraqm shapes it in its direction. Pillow draws one font at
    a time, so libraqm's own bidi, which sees one run only, cannot order the line.
    """
    words: list[tuple[str, str]] = []
    for i, w in enumerate(x for x in line.split(" ") if x):
        if i:
            words.append((BASE_FONT, " "))
        words.extend((r.font, r.text) for r in itemize_text(w))
    text = "".join(t for _, t in words)
    _, levels = bidi_levels(text, rtl=rtl_base)
    return [
        None if p.text == " " else CardRun(p.tag, p.text, p.rtl)
        for p in visual_runs(words, levels, rtl=rtl_base)
    ]


def card_runs(text: str) -> list[CardRun]:
    """The runs a card draws for ``text`` set on one line, left to right (spaces omitted)."""
    clean = _clean(text, len(text))
    rtl_base = is_rtl(clean)
    return [r for r in _visual_runs(clean, rtl_base) if r is not None]


# ------------------------------------------------------------------------- wrapping


def _split_long(word: str, size: int, bold: bool, max_width: float) -> list[str]:
    """Break a word wider than the line (e.g. CJK without spaces) between clusters."""
    pieces: list[str] = []
    current = ""
    used = 0.0
    for cl in graphemes(word):
        w = _word_width(cl, size, bold)  # per-cluster widths: close enough, and linear time
        if current and used + w > max_width:
            pieces.append(current)
            current, used = cl, w
        else:
            current += cl
            used += w
    if current:
        pieces.append(current)
    return pieces


def _wrap(text: str, size: int, bold: bool, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if _line_width(candidate, size, bold) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        if _word_width(word, size, bold) <= max_width:
            current = word
        else:
            *full, current = _split_long(word, size, bold, max_width)
            lines.extend(full)
    if current:
        lines.append(current)
    return lines


def _fit_lines(
    text: str, sizes: list[int], bold: bool, max_width: float, max_lines: int
) -> tuple[int, list[str]]:
    """Largest font size whose wrap fits ``max_lines``; else the smallest, ellipsised."""
    for size in sizes:
        lines = _wrap(text, size, bold, max_width)
        if len(lines) <= max_lines:
            return size, lines
    size = sizes[-1]
    lines = _wrap(text, size, bold, max_width)[:max_lines]
    if lines:
        clusters = graphemes(lines[-1])
        while clusters and _line_width("".join(clusters) + ELLIPSIS, size, bold) > max_width:
            clusters.pop()
        lines[-1] = "".join(clusters).rstrip() + ELLIPSIS
    return size, lines


# -------------------------------------------------------------------------- drawing


def _gradient(width: int, height: int, start: RGB, end: RGB, direction: int) -> Image.Image:
    ramp = Image.linear_gradient("L")  # 256x256, black at the top to white at the bottom
    vertical = ramp.resize((width, height))
    horizontal = ramp.rotate(90).resize((width, height))  # white on the left
    if direction == 0:
        mask = vertical
    elif direction == 1:
        mask = horizontal
    else:
        mask = Image.blend(vertical, horizontal, 0.5)  # diagonal
        if direction == 3:
            mask = mask.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return Image.composite(
        Image.new("RGB", (width, height), end), Image.new("RGB", (width, height), start), mask
    )


def _draw_run(
    draw: ImageDraw.ImageDraw,
    x: float,
    baseline: float,
    run: CardRun,
    size: int,
    bold: bool,
    fill: tuple[int, int, int, int],
) -> None:
    """One run, its left edge at ``x``; never raises (a card without a word beats a failed
    turn): without libraqm it is drawn unshaped, then in Pillow's default font, or not."""
    face = _face(run.font, size, bold)
    attempts: list[tuple[Font, str | None]] = [(face, "rtl" if run.rtl else "ltr"), (face, None)]
    attempts.append((_default_font(size), None))
    for font, direction in attempts:
        try:
            draw.text(
                (x, baseline), run.text, font=font, fill=fill, anchor="ls", direction=direction
            )
            return
        except Exception:  # noqa: S112 - try the next, plainer way
            continue


def _draw_line(
    draw: ImageDraw.ImageDraw,
    center: tuple[float, float],
    line: str,
    rtl_base: bool,
    size: int,
    bold: bool,
    fill: tuple[int, int, int, int],
) -> None:
    """A line centred on ``center``, its runs in visual order on one baseline."""
    runs = _visual_runs(line, rtl_base)
    space = _space_width(size, bold)
    widths = [space if r is None else _run_width(r.font, size, bold, r.text, r.rtl) for r in runs]
    # Centre the base font's ascent..descent box on the line, as anchor "mm" would.
    ascent, descent = _face(BASE_FONT, size, bold).getmetrics()  # type: ignore[union-attr]
    baseline = center[1] + (ascent - descent) / 2
    x = center[0] - sum(widths) / 2
    for run, width in zip(runs, widths, strict=True):
        if run is not None:
            _draw_run(draw, x, baseline, run, size, bold, fill)
        x += width


def render_card_png(
    *, title: str, subtitle: str, seed: str, width: int = 1200, height: int = 630
) -> bytes:
    """Render a titled card (gradient, wrapped centered title, subtitle, footer) as PNG bytes.

    Raises ValueError when width/height are outside 100..4096 pixels.
    """
    if not (_MIN_SIDE <= width <= _MAX_SIDE and _MIN_SIDE <= height <= _MAX_SIDE):
        raise ValueError(
            f"card size must be within {_MIN_SIDE}..{_MAX_SIDE} px, got {width}x{height}"
        )
    digest = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).digest()
    start, end, accent = PALETTES[digest[0] % len(PALETTES)]
    image = _gradient(width, height, start, end, digest[1] % 4).convert("RGBA")

    # Two soft accent circles for depth, placed by the hash.
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    deco = ImageDraw.Draw(overlay)
    unit = min(width, height)
    for i in range(2):
        ox = int(width * (digest[2 + i] / 255))
        oy = int(height * (digest[4 + i] / 255))
        r = int(unit * (0.35 + 0.35 * digest[6 + i] / 255))
        deco.ellipse((ox - r, oy - r, ox + r, oy + r), fill=(*accent, 26 + 12 * i))
    # A gentle dark vignette band behind the text block.
    deco.rectangle((0, int(height * 0.18), width, int(height * 0.82)), fill=(0, 0, 0, 38))
    image = Image.alpha_composite(image, overlay)

    draw = ImageDraw.Draw(image)
    title_text = _clean(title, 300) or " "
    subtitle_text = _clean(subtitle, 300)
    max_width = width * 0.84
    white = (255, 255, 255, 255)

    with _text_lock:
        title_sizes = [max(12, int(height * f)) for f in (0.12, 0.105, 0.09, 0.078, 0.066, 0.056)]
        title_size, title_lines = _fit_lines(title_text, title_sizes, True, max_width, 4)
        sub_size = max(10, int(height * 0.045))
        _, sub_lines = _fit_lines(subtitle_text, [sub_size], False, max_width, 2)
        if not subtitle_text:
            sub_lines = []

        # Room for Devanagari marks above and Arabic descenders below the Latin box.
        title_lh = title_size * 1.3
        sub_lh = sub_size * 1.4
        gap = height * 0.05 if sub_lines else 0.0
        block = len(title_lines) * title_lh + gap + len(sub_lines) * sub_lh
        y = (height - block) / 2 - height * 0.02
        cx = width / 2
        title_rtl = is_rtl(title_text)
        for line in title_lines:
            _draw_line(draw, (cx, y + title_lh / 2), line, title_rtl, title_size, True, white)
            y += title_lh
        if sub_lines:
            bar_w = width * 0.08
            bar_y = y + gap / 2
            draw.rounded_rectangle(
                (cx - bar_w / 2, bar_y - 3, cx + bar_w / 2, bar_y + 3),
                radius=3,
                fill=(*accent, 255),
            )
            y += gap
            sub_rtl = is_rtl(subtitle_text)
            for line in sub_lines:
                _draw_line(
                    draw, (cx, y + sub_lh / 2), line, sub_rtl, sub_size, False, (*white[:3], 215)
                )
                y += sub_lh

        footer_size = max(10, int(height * 0.032))
        footer_y = height - height * 0.07
        _draw_line(draw, (cx, footer_y), _FOOTER, False, footer_size, False, (*white[:3], 150))

    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", compress_level=3)
    return out.getvalue()
