"""PDF export: real text in every script, right fonts, no markup injection, big inputs."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from reportlab.pdfbase import pdfmetrics

from app.typesetting.pdf import (
    BASE_FONT,
    CJK_FONT,
    EMOJI_FONT,
    PdfBudget,
    PdfConversation,
    PdfMessage,
    font_covers,
    itemize_text,
    render_conversation_pdf,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TITLE = "Quarterly plan — Привет"
LONG_WORD = "Supercalifragilistic" * 15  # 300 chars, no break opportunity
LONG_URL = (
    "https://example.com/a/very/long/path/that/keeps/going/and/going/and/going"
    "?query=string&with=lots&of=parameters&and=more#fragment-here-" + "z" * 80
)
CODE = "```python\ndef f(x):\n    if x < 3 and x > 1:\n        return {'a': x & 1}\n```"

SCRIPTS: dict[str, str] = {
    "latin": "Ça va? Über Straße, naïve café.",
    "cyrillic": "Съешь же ещё этих мягких французских булок.",
    "greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "devanagari": "दिवाली की शुभकामनाएँ! नमस्ते दुनिया।",
    "arabic": "مرحبا بالعالم! هذا نص عربي.",
    "chinese": "你好，世界！这是中文。",  # noqa: RUF001 - fullwidth punctuation is the point
    "japanese": "こんにちは、カタカナとひらがな。",
    "korean": "안녕하세요 세계",
    "emoji": "Party 😀 🎉 👍🏽 ❤️ 👨‍👩‍👧 done ✅",
    "long_word": LONG_WORD,
    "url": LONG_URL,
    "code": CODE,
    "script_tag": "<script>alert('x')</script> & <b>not bold</b> &amp;",
}

# Font needed per sample, by the reportlab font name of the face that must be embedded.
EXPECTED_FONT = {
    "cyrillic": BASE_FONT,
    "greek": BASE_FONT,
    "devanagari": "CK-NotoSansDevanagari",
    "arabic": "CK-NotoSansArabic",
    "chinese": CJK_FONT,
    "japanese": CJK_FONT,
    "korean": "CK-NotoSansKR",  # Noto Sans SC has no Hangul
    "emoji": EMOJI_FONT,
}


def _conversation(n: int) -> PdfConversation:
    return PdfConversation(
        title=TITLE,
        session_id="sess-0123456789",
        created_at=T0,
        last_activity_at=T0 + timedelta(hours=2),
        archived_at=None,
        message_count=n,
    )


def _png(path: Path) -> Path:
    """A tiny valid PNG, written by hand so the test needs no imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    w, h = 40, 20
    rows = b"".join(b"\x00" + b"\x20\x80\xe0" * w for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def _messages(image: Path, missing: Path) -> Iterator[PdfMessage]:
    for i, content in enumerate(SCRIPTS.values()):
        yield PdfMessage(i, ("user", "assistant", "system")[i % 3], content, T0 + timedelta(i))
    yield PdfMessage(100, "assistant", "picture", T0, image_path=image)
    yield PdfMessage(101, "user", "broken picture", T0, image_path=missing)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> PdfReader:
    tmp = tmp_path_factory.mktemp("pdf")
    buf = io.BytesIO()
    msgs = _messages(_png(tmp / "ok.png"), tmp / "missing.png")  # a generator, not a list
    render_conversation_pdf(_conversation(len(SCRIPTS) + 2), msgs, buf)
    assert buf.getvalue().startswith(b"%PDF")
    return PdfReader(io.BytesIO(buf.getvalue()))


def _text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _embedded_fonts(reader: PdfReader) -> set[str]:
    names: set[str] = set()
    for page in reader.pages:
        resources: Any = page["/Resources"].get_object()
        fonts = resources.get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            desc = font.get("/FontDescriptor")
            if desc is None and descendants:
                desc = descendants[0].get_object().get("/FontDescriptor")
            if desc is not None and any(
                k in desc.get_object() for k in ("/FontFile2", "/FontFile", "/FontFile3")
            ):
                names.add(str(font["/BaseFont"]))
    return names


def test_header_footer_and_text(rendered: PdfReader) -> None:
    text = _text(rendered)
    assert len(rendered.pages) > 0
    assert "Page 1" in text
    assert TITLE in text
    assert "sess-0123456789" in text
    assert "2024-05-01 12:00 UTC" in text
    assert "You" in text and "Assistant" in text
    for key in ("latin", "cyrillic", "greek", "chinese", "japanese", "korean"):
        assert SCRIPTS[key] in text, key
    assert text.count("[image]") == 1  # the unreadable image became a note, not an error
    # The readable one is drawn, at its own size (never enlarged).
    (image,) = [img.image for page in rendered.pages for img in page.images]
    assert image.size == (40, 20)


def test_markup_is_escaped_not_interpreted(rendered: PdfReader) -> None:
    text = _text(rendered)
    assert "<script>alert('x')</script>" in text
    assert "<b>not bold</b> &amp;" in text
    assert "return {'a': x & 1}" in text
    # leading indentation of code survives (as no-break spaces)
    assert "\xa0\xa0\xa0\xa0if x < 3" in text or "    if x < 3" in text


def test_long_words_wrap_instead_of_overflowing(rendered: PdfReader) -> None:
    # All the characters are there, spread over several lines.
    flat = "".join(_text(rendered).split())
    assert LONG_WORD in flat
    assert LONG_URL in flat
    page_width = float(rendered.pages[0].mediabox.width)
    overflow: list[float] = []

    def visitor(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            overflow.append(tm[4] * cm[0] + cm[4])

    for page in rendered.pages:
        page.extract_text(visitor_text=visitor)
    assert overflow and max(overflow) < page_width


def test_each_needed_font_is_embedded(rendered: PdfReader) -> None:
    embedded = _embedded_fonts(rendered)
    for key, font in EXPECTED_FONT.items():
        runs = itemize_text(SCRIPTS[key])
        assert any(r.font == font for r in runs), (key, runs)
    # An embedded subset is named "XXXXXX+<PostScript name>" (collections add "-<index>").
    for font in set(EXPECTED_FONT.values()):
        ps_name = pdfmetrics.getFont(font).face.name
        ps_name = ps_name.decode() if isinstance(ps_name, bytes) else ps_name
        assert any(f"+{ps_name}" in name for name in embedded), (font, embedded)


@pytest.mark.parametrize("key", list(SCRIPTS))
def test_every_char_is_in_a_font_that_has_it(key: str) -> None:
    for line in SCRIPTS[key].split("\n"):
        runs = itemize_text(line)
        for run in runs:
            for ch in run.text:
                assert font_covers(run.font, ch), (key, run.font, hex(ord(ch)))


def test_devanagari_is_one_run_in_a_shaping_font() -> None:
    runs = itemize_text("दिवाली")
    assert runs == [("CK-NotoSansDevanagari", "दिवाली")]


def test_uncovered_chars_get_readable_stand_ins() -> None:
    runs = itemize_text("a\U0010fffdb\u0007c")  # private use plane, a control char
    text = "".join(r.text for r in runs)
    assert text == "a[U+10FFFD]bc"
    assert all(font_covers(r.font, r.text) for r in runs)


def test_ten_thousand_messages_from_a_generator() -> None:
    n = 10_000

    def gen() -> Iterator[PdfMessage]:
        for i in range(n):
            role = "user" if i % 2 == 0 else "assistant"
            yield PdfMessage(i, role, f"Message {i}: ok 👍 Ответ", T0 + timedelta(seconds=i))

    buf = io.BytesIO()
    # The default page budget; the time budget out of reach, whatever the machine's load
    # (test_pdf_budget.py tests that one).
    cut = render_conversation_pdf(_conversation(n), gen(), buf, budget=PdfBudget(max_seconds=3600))
    reader = PdfReader(io.BytesIO(buf.getvalue()))
    assert not cut
    assert len(reader.pages) > 500
    assert "Page 2" in (reader.pages[1].extract_text() or "")


def test_empty_conversation_renders() -> None:
    buf = io.BytesIO()
    render_conversation_pdf(_conversation(0), [], buf)
    reader = PdfReader(io.BytesIO(buf.getvalue()))
    assert "No messages." in _text(reader)


def _line_skeletons(reader: PdfReader, rtl_font: str) -> list[str]:
    """Each line's text in drawing order (left to right), every stretch of glyphs in
    ``rtl_font`` written as one "#": shaped Arabic extracts as presentation forms and
    private-use chars, but where it sits among the other text is what is checked."""
    lines: list[str] = []
    current: list[str] = []
    in_rtl = False

    def visitor(text: str, cm: list[float], tm: list[float], font: Any, *_: object) -> None:
        nonlocal in_rtl
        name = str((font or {}).get("/BaseFont", ""))
        if not text.strip("\n"):
            pass
        elif rtl_font in name:
            if not in_rtl:
                current.append("#")
            in_rtl = True
        else:
            current.append(text.strip("\n"))
            in_rtl = False
        if text.endswith("\n"):
            lines.append(" ".join("".join(current).split()))
            current.clear()
            in_rtl = False

    for page in reader.pages:
        page.extract_text(visitor_text=visitor)
    return lines


def test_mixed_arabic_and_latin_lines_are_in_visual_order() -> None:
    # The Unicode bidi algorithm, as a browser shows these lines: digits after Arabic
    # letters read as an Arabic number (left of the word), a right-to-left paragraph
    # starts at the right with its Latin words left to right inside it.
    lines = {
        "Hello مرحبا 2024!": "Hello 2024 #!",
        "قال Chatkeep نعم.": "# Chatkeep #",
        "مرحبا بالعالم! هذا نص عربي.": "# # # # #",
    }
    buf = io.BytesIO()
    content = "\n".join(lines)
    render_conversation_pdf(_conversation(1), [PdfMessage(1, "user", content, T0)], buf)
    skeletons = _line_skeletons(PdfReader(io.BytesIO(buf.getvalue())), "NotoSansArabic")
    for expected in lines.values():
        assert expected in skeletons, (expected, skeletons)


def test_a_word_mixing_fonts_is_shaped_font_by_font() -> None:
    # reportlab shapes a word with its first font only: "Hi😀" would get the emoji's glyph
    # from Noto Sans (a wrong, private glyph). shaping.py swaps the one name its Paragraph
    # calls, reportlab.platypus.paragraph.shapeFragWord, for a per-fragment version
    # (_install_shaping_fix). If a reportlab release renames that name, changes the word
    # format, or shapes per font itself, this fails: adapt or drop the fix then.
    from reportlab.lib.abag import ABag
    from reportlab.pdfbase import ttfonts
    from reportlab.platypus import paragraph as rl_paragraph

    from app.typesetting import shaping

    shaping.ensure_font(BASE_FONT)
    shaping.ensure_font(EMOJI_FONT)
    assert rl_paragraph.shapeFragWord is shaping._shape_frag_word_per_font
    assert shaping._orig_shape_frag_word is ttfonts.shapeFragWord
    word = [0.0, (ABag(fontName=BASE_FONT, fontSize=10), "Hi")]
    word.append((ABag(fontName=EMOJI_FONT, fontSize=10), "😀"))
    ours = [(f.fontName, str(s)) for f, s in rl_paragraph.shapeFragWord(list(word))[1:]]
    assert ours == [(BASE_FONT, "Hi"), (EMOJI_FONT, "😀")]
    reportlabs = [(f.fontName, str(s)) for f, s in ttfonts.shapeFragWord(list(word))[1:]]
    assert reportlabs[1] != (EMOJI_FONT, "😀"), "reportlab shapes per font now: drop the fix"
