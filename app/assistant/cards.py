"""Local image rendering for drafts: a titled card as PNG bytes (Pillow only).

Deterministic for the same inputs on the same Pillow build: the palette and the
decoration come from a stable hash of ``seed``. Any Unicode title is accepted;
characters the bundled font lacks show as boxes, but rendering never fails.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

__all__ = ["PALETTES", "render_card_png"]

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
_ELLIPSIS = "\u2026"


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError, AttributeError):  # pragma: no cover - old Pillow
        return ImageFont.load_default()


def _clean(text: str, limit: int) -> str:
    """Drop control characters, lone surrogates and the like; collapse whitespace."""
    text = unicodedata.normalize("NFC", text)
    kept = "".join(
        " " if unicodedata.category(ch) in {"Cc", "Cs", "Co", "Zl", "Zp"} else ch for ch in text
    )
    return " ".join(kept.split())[:limit]


def _text_width(font: Font, text: str) -> float:
    try:
        return float(font.getlength(text))
    except Exception:
        return float(len(text) * getattr(font, "size", 10))


def _split_long(word: str, font: Font, max_width: float) -> list[str]:
    """Break a word wider than the line (e.g. CJK without spaces) between characters."""
    pieces: list[str] = []
    current = ""
    used = 0.0
    for ch in word:
        w = _text_width(font, ch)  # per-character widths: close enough, and linear time
        joins = unicodedata.category(ch).startswith("M") or ch in "\u200c\u200d"
        if current and not joins and used + w > max_width:
            pieces.append(current)
            current, used = ch, w
        else:
            current += ch
            used += w
    if current:
        pieces.append(current)
    return pieces


def _wrap(text: str, font: Font, max_width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if _text_width(font, candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        if _text_width(font, word) <= max_width:
            current = word
        else:
            *full, current = _split_long(word, font, max_width)
            lines.extend(full)
    if current:
        lines.append(current)
    return lines


def _fit_lines(
    text: str, sizes: list[int], max_width: float, max_lines: int
) -> tuple[Font, int, list[str]]:
    """Largest font size whose wrap fits ``max_lines``; else the smallest, ellipsised."""
    for size in sizes:
        font = _font(size)
        lines = _wrap(text, font, max_width)
        if len(lines) <= max_lines:
            return font, size, lines
    size = sizes[-1]
    font = _font(size)
    lines = _wrap(text, font, max_width)[:max_lines]
    if lines:
        last = lines[-1]
        while last and _text_width(font, last + _ELLIPSIS) > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + _ELLIPSIS
    return font, size, lines


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


def _draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: Font,
    fill: tuple[int, int, int, int],
) -> None:
    """Centered text; never raises (falls back to an ASCII rendering, then to nothing)."""
    for candidate in (text, text.encode("ascii", "replace").decode("ascii")):
        try:
            draw.text(xy, candidate, font=font, fill=fill, anchor="mm")
            return
        except Exception:  # noqa: S112 - a card without one line beats a failed turn
            continue


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

    title_sizes = [max(12, int(height * f)) for f in (0.12, 0.105, 0.09, 0.078, 0.066, 0.056)]
    title_font, title_size, title_lines = _fit_lines(title_text, title_sizes, max_width, 4)
    sub_size = max(10, int(height * 0.045))
    sub_font, _, sub_lines = _fit_lines(subtitle_text, [sub_size], max_width, 2)
    if not subtitle_text:
        sub_lines = []

    title_lh = title_size * 1.2
    sub_lh = sub_size * 1.35
    gap = height * 0.05 if sub_lines else 0.0
    block = len(title_lines) * title_lh + gap + len(sub_lines) * sub_lh
    y = (height - block) / 2 - height * 0.02
    cx = width / 2
    for line in title_lines:
        _draw_text(draw, (cx, y + title_lh / 2), line, title_font, (255, 255, 255, 255))
        y += title_lh
    if sub_lines:
        bar_w = width * 0.08
        bar_y = y + gap / 2
        draw.rounded_rectangle(
            (cx - bar_w / 2, bar_y - 3, cx + bar_w / 2, bar_y + 3), radius=3, fill=(*accent, 255)
        )
        y += gap
        for line in sub_lines:
            _draw_text(draw, (cx, y + sub_lh / 2), line, sub_font, (255, 255, 255, 215))
            y += sub_lh

    footer_font = _font(max(10, int(height * 0.032)))
    _draw_text(draw, (cx, height - height * 0.07), _FOOTER, footer_font, (255, 255, 255, 150))

    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", compress_level=3)
    return out.getvalue()
