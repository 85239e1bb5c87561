"""PDF layout is linear in the size of the text, and bounded by a page and time budget."""

from __future__ import annotations

import gc
import io
import time
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from app.typesetting.pdf import PdfBudget, PdfConversation, PdfMessage, render_conversation_pdf
from tests.conftest import chat, register

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOTE = "This PDF stops here"


# The default page budget, and a time budget no busy machine reaches: the tests that are
# not about the time budget must not depend on the machine's load.
PATIENT = PdfBudget(max_seconds=3600)


def _render(content: str, budget: PdfBudget = PATIENT) -> tuple[float, bytes, bool]:
    """CPU time of this thread only, without the collector (whose cost grows with
    whatever else the test process holds), the PDF, and whether it was cut short."""
    conv = PdfConversation("Lines", "s-1", T0, T0, None, 1)
    out = io.BytesIO()
    gc.disable()
    try:
        started = time.thread_time()
        cut = render_conversation_pdf(
            conv, [PdfMessage(1, "user", content, T0)], out, budget=budget
        )
        seconds = time.thread_time() - started
    finally:
        gc.enable()
    return seconds, out.getvalue(), cut


def _text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_layout_cost_grows_linearly_with_lines():
    _render("warm up\n" * 50)
    small = min(_render("x\n" * 1000)[0] for _ in range(3))
    large, pdf, cut = _render("x\n" * 8000)
    # Quadratic layout made this ratio about 90; linear is about 8. Room for a busy machine.
    assert large <= 30 * max(small, 0.01), (small, large)
    pages, text = _text(pdf)
    assert not cut and NOTE not in text
    assert text.count("x") >= 8000 and pages > 100


@pytest.mark.parametrize("fence", [False, True], ids=["text", "code"])
def test_a_long_message_stops_at_the_page_budget_with_a_note(fence):
    body = "line\n" * 15000
    content = f"```\n{body}```" if fence else body
    seconds, pdf, cut = _render(content, PdfBudget(max_pages=3, max_seconds=60))
    pages, text = _text(pdf)
    assert cut
    assert pages <= 4
    assert NOTE in text and "Export it as JSON" in text
    assert seconds < 5


def test_the_time_budget_ends_the_pdf_too():
    _, pdf, cut = _render("word " * 6000 + "\n" + "y\n" * 15000, PdfBudget(max_seconds=0.01))
    assert cut
    assert NOTE in _text(pdf)[1]


def test_one_very_long_line_is_laid_out_whole():
    line = ("abc " * 7000).strip()  # 28k characters, no newline
    seconds, pdf, cut = _render(line)
    assert not cut and seconds < 10
    assert _text(pdf)[1].replace("\n", " ").count("abc") == 7000


@pytest.mark.storage
async def test_the_export_route_applies_the_settings_budget(app, client):
    app.state.settings.pdf_max_pages = 2
    h = await register(client)
    sid = (await chat(client, h, "x\n" * 15000)).json()["sessionId"]
    r = await client.get(f"/api/sessions/{sid}/export?format=pdf", headers=h)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    pages, text = _text(r.content)
    assert pages <= 3 and NOTE in text
