"""A Markdown reply in the PDF: headings, emphasis, lists, quotes, a table laid out as a
table, code in the monospace face, links with their URL; the user's text as typed."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from pypdf import PdfReader

from app.typesetting.pdf import (
    BOLD_FONT,
    ITALIC_FONT,
    MONO_FONT,
    PdfConversation,
    PdfMessage,
    _style_font_path,
    render_conversation_pdf,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REPLY = """# Quarterly results

Revenue grew **strongly** and *steadily*; see [the report](https://example.com/q3) or
https://example.org/raw.

| Region | Revenue | Growth |
|:-------|--------:|:------:|
| North  | 1200    | 12%    |
| South  | 870     | 7%     |

```python
def growth(before, after):
    return (after - before) / before
```

1. Collect the numbers
2. Check them
   - twice

> Quoted remark

- [x] reviewed
"""


@pytest.fixture(scope="module")
def reader() -> PdfReader:
    buf = io.BytesIO()
    messages = [
        PdfMessage(1, "user", "Summarise **this** | as | typed", T0),
        PdfMessage(2, "assistant", REPLY, T0),
    ]
    conversation = PdfConversation("Results", "sess-md", T0, T0, None, len(messages))
    render_conversation_pdf(conversation, messages, buf)
    return PdfReader(io.BytesIO(buf.getvalue()))


def _runs(reader: PdfReader) -> list[tuple[str, float, float, str]]:
    """Every piece of text with its position and the PostScript name of its font."""
    runs: list[tuple[str, float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if text.strip() and font is not None:
            x, y = tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]
            runs.append((text.strip(), x, y, str(font.get("/BaseFont", ""))))

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    return runs


def _font_of(runs: list[tuple[str, float, float, str]], text: str) -> str:
    return next(font for t, _, _, font in runs if text in t)


def test_the_text_of_every_markdown_block_is_there(reader: PdfReader) -> None:
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Quarterly results" in text and "# Quarterly" not in text
    assert "strongly" in text and "**strongly**" not in text
    assert "the report (https://example.com/q3)" in text  # a link shows its URL
    assert "https://example.org/raw" in text
    assert "def growth(before, after):" in text
    assert "return (after - before) / before" in text
    assert "1. " in text or "1.\n" in text
    assert "Quoted remark" in text and "> Quoted" not in text
    assert "[x] reviewed" in text
    # The user's message stays as typed.
    assert "Summarise **this** | as | typed" in text


def test_the_table_is_laid_out_in_rows_and_columns(reader: PdfReader) -> None:
    runs = _runs(reader)
    where = {t: (x, y) for t, x, y, _ in runs}
    for row in (("Region", "Revenue", "Growth"), ("North", "1200", "12%"), ("South", "870", "7%")):
        xs = [where[cell][0] for cell in row]
        ys = [where[cell][1] for cell in row]
        assert max(ys) - min(ys) < 2, row  # one row: one baseline
        assert xs == sorted(xs), row  # left to right
    assert where["North"][1] > where["South"][1]  # rows top to bottom
    assert abs(where["Region"][0] - where["North"][0]) < 2  # a column lines up


def test_code_is_monospace_and_emphasis_has_its_faces(reader: PdfReader) -> None:
    runs = _runs(reader)
    mono = _font_of(runs, "def growth")
    assert mono.endswith("JetBrainsMono-Regular")
    assert _font_of(runs, "return (after") == mono
    assert _font_of(runs, "strongly").endswith("BitstreamVeraSans-Bold")
    assert _font_of(runs, "steadily").endswith("NotoSans-Italic")
    assert _font_of(runs, "Quarterly results").endswith("BitstreamVeraSans-Bold")
    assert _font_of(runs, "Revenue grew").endswith("NotoSans-Regular")
    # The code keeps its indentation (as no-break spaces).
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "\xa0\xa0\xa0\xa0return (after" in text or "    return (after" in text


def test_the_faces_come_from_packages() -> None:
    for font in (MONO_FONT, BOLD_FONT, ITALIC_FONT):
        assert _style_font_path(font).is_file(), font


def test_a_huge_markdown_table_and_code_block_stay_within_budget() -> None:
    rows = "\n".join(f"| {i} | {'x' * 40} |" for i in range(3000))
    code = "```\n" + "y = 1\n" * 5000 + "```"
    content = f"| n | text |\n|---|---|\n{rows}\n\n{code}"
    buf = io.BytesIO()
    cut = render_conversation_pdf(
        PdfConversation("Big", "sess-big", T0, T0, None, 1),
        [PdfMessage(1, "assistant", content, T0)],
        buf,
    )
    pages = PdfReader(io.BytesIO(buf.getvalue())).pages
    assert not cut
    text = "".join(p.extract_text() for p in pages)
    assert "| 2999" not in text and "2999" in text  # every row, as a table
    assert text.count("y = 1") == 5000
