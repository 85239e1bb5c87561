"""app/core/text.py: bidi order (python-bidi), graphemes, shortening, one-line cleaning."""

from __future__ import annotations

from bidi import get_display
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.text import (
    bidi_levels,
    grapheme_floor,
    graphemes,
    one_line,
    shorten,
    visual_order,
    visual_runs,
)

LINES = [
    "Hello مرحبا 2024!",
    "مرحبا بالعالم! هذا نص عربي.",
    "abc שלום def",
    "قال Chatkeep 3.5 نعم",
    "\u2067abc\u2069 مرحبا",
    "e\u0301 😀 ok",
]


def test_levels_are_read_from_python_bidi() -> None:
    # The levels come from python-bidi's debug report: if a release changes its shape,
    # this fails (and so would the PDF and the cards).
    assert bidi_levels("ab مر") == (False, [0, 0, 0, 1, 1])
    assert bidi_levels("مر ab") == (True, [1, 1, 1, 2, 2])
    assert bidi_levels("ab", rtl=True) == (True, [2, 2])
    # A text that looks like the report itself cannot confuse the reading.
    text = 'levels: [Level(3)]\n    paragraphs: "x'
    assert bidi_levels(text)[1] == [0] * len(text)
    assert bidi_levels("\ud800 مر") == (True, [1, 1, 1, 1])


def test_visual_order_is_python_bidis_display() -> None:
    for line in LINES:
        assert visual_order(line) == get_display(line), line
    # Brackets in a right-to-left run are mirrored, as drawn.
    assert visual_order("مرحبا (abc)") == "(abc) ابحرم"


def test_visual_runs_split_at_spaces_and_levels() -> None:
    rtl, levels = bidi_levels("Hi مرحبا 2024")
    runs = visual_runs([("L", "Hi "), ("A", "مرحبا 2024")], levels, rtl=rtl)
    assert [(r.tag, r.text, r.rtl) for r in runs] == [
        ("L", "Hi", False),
        ("L", " ", False),
        ("A", "2024", False),
        ("A", " ", True),
        ("A", "مرحبا", True),
    ]


def test_graphemes_keep_clusters_whole() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert graphemes(f"e\u0301{family}\U0001f1eb\U0001f1f7") == ["e\u0301", family, "🇫🇷"]
    assert grapheme_floor(f"ab{family}", 4) == 2
    assert grapheme_floor("abc", 10) == 3


# Chars that join clusters (marks, ZWJ, flags' halves, Hangul jamo, a prepended sign, a
# virama between consonants, CR LF) next to ones that do not.
_CLUSTER_CHARS = st.sampled_from(
    [
        *"ab \r\n\t\x00",
        *("\u0301", "\u200d", "\U0001f468", "\U0001f1eb", "\U0001f1f7", "\u0600", "\u093f"),
        *("\u0915", "\u094d", "\u1100", "\u1161", "\u11a8", "가", "中", "é", "\U0001f3fb"),
        "\ufe0f",
    ]
)


@given(st.text(_CLUSTER_CHARS, max_size=90), st.integers(min_value=-1, max_value=95))
@settings(max_examples=3000, derandomize=True)
def test_grapheme_floor_is_the_last_boundary_of_a_scan_from_the_start(text, end) -> None:
    bounds = [0]
    for cluster in graphemes(text):
        bounds.append(bounds[-1] + len(cluster))
    assert grapheme_floor(text, end) == max(b for b in bounds if b <= max(end, 0))


def test_grapheme_floor_in_a_cluster_longer_than_its_look_back() -> None:
    zalgo = "ab" + "\u0301" * 300 + "cd"
    assert grapheme_floor(zalgo, 250) == 1
    assert grapheme_floor(zalgo, 302) == 302
    assert grapheme_floor("x\r\ny", 2) == 1


def test_shorten_cuts_at_a_word_and_never_inside_a_cluster() -> None:
    assert shorten("short", 10) == "short"
    assert shorten("one two three four five", 12) == "one two…"
    assert shorten("abcdefghij", 5, at_word=False, strip="") == "abcd…"
    # A flag is two code points: never cut between them.
    assert shorten("ab🇫🇷cd", 4, at_word=False) == "ab…"


def test_one_line() -> None:
    assert one_line(" a\x00b\u2028c\td  ") == "a b c d"
    assert one_line("e\u0301") == "é"
