"""Local card rendering: valid PNG, size, determinism, seeds, odd Unicode, speed."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app.assistant.cards import PALETTES, render_card_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


def test_returns_a_valid_png_of_the_default_size() -> None:
    data = render_card_png(title="Happy Diwali!", subtitle="Facebook · Acme Bakery", seed="a")
    image = open_png(data)
    assert image.size == (1200, 630)
    assert image.mode == "RGB"


@pytest.mark.parametrize(("width", "height"), [(1080, 1080), (1080, 1350), (400, 209), (100, 100)])
def test_custom_sizes(width: int, height: int) -> None:
    image = open_png(
        render_card_png(title="Summer sale", subtitle="", seed="s", width=width, height=height)
    )
    assert image.size == (width, height)


@pytest.mark.parametrize(("width", "height"), [(0, 630), (1200, -1), (99, 630), (5000, 630)])
def test_rejects_unreasonable_sizes(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="card size"):
        render_card_png(title="t", subtitle="s", seed="x", width=width, height=height)


def test_deterministic_for_the_same_inputs() -> None:
    one = render_card_png(title="Our new office", subtitle="LinkedIn", seed="draft-42")
    two = render_card_png(title="Our new office", subtitle="LinkedIn", seed="draft-42")
    assert one == two


def test_different_seeds_give_different_cards() -> None:
    cards = {
        render_card_png(title="Same title", subtitle="Same", seed=f"seed-{i}") for i in range(8)
    }
    assert len(cards) == 8


def test_seed_picks_the_palette() -> None:
    # The top-left pixel sits on the gradient start (plus soft overlays): different seeds land
    # on visibly different colours across the palette table.
    corners = set()
    for i in range(40):
        image = open_png(render_card_png(title="", subtitle="", seed=str(i), width=200, height=120))
        corners.add(image.getpixel((0, 0)))
    assert len(corners) >= 4
    assert len(PALETTES) >= 6


def test_title_is_drawn_in_white() -> None:
    blank = open_png(render_card_png(title="", subtitle="", seed="k"))
    titled = open_png(render_card_png(title="HELLO WORLD", subtitle="", seed="k"))
    assert blank.tobytes() != titled.tobytes()
    whites = titled.convert("L").point(lambda v: 255 if v > 240 else 0).histogram()[255]
    assert whites > 500


def test_text_changes_the_image() -> None:
    one = render_card_png(title="Diwali", subtitle="Facebook", seed="same")
    two = render_card_png(title="Holi", subtitle="Facebook", seed="same")
    three = render_card_png(title="Diwali", subtitle="Instagram", seed="same")
    assert len({one, two, three}) == 3


@pytest.mark.parametrize(
    "title",
    [
        "दिवाली की शुभकामनाएं",
        "春节快乐 " * 30,
        "🎉🪔✨ 👨‍👩‍👧 🏳️‍🌈",
        "\x00\x01 control \x7f chars",
        "lone \ud800 surrogate",
        "مرحبا بالعالم",
        "\u202eright-to-left override",
        "x" * 5000,
        "word " * 2000,
        "",
        "   ",
        "\u0301\u0302 leading combining marks",
    ],
)
def test_never_crashes_on_unicode_titles(title: str) -> None:
    data = render_card_png(title=title, subtitle=title[:50], seed=title)
    assert open_png(data).size == (1200, 630)


def test_seed_with_odd_characters() -> None:
    data = render_card_png(title="t", subtitle="s", seed="\ud800\x00🎉")
    assert open_png(data).size == (1200, 630)
