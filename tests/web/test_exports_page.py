"""Exports and import from the history browser, in a real Chromium."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

RECORD_TRANSFER = """() => {
  window.transferStates = [];
  const text = document.getElementById("transfer-text");
  const bar = document.getElementById("transfer-progress");
  const note = () => window.transferStates.push(
    [text.textContent, bar.hidden, bar.hasAttribute("value") ? bar.value : null]);
  new MutationObserver(note).observe(document.getElementById("transfer"),
    { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def test_export_json_pdf_and_zip_then_import_into_another_account(new_page, live_server, tmp_path):
    page = new_page().open().sign_up(live_server.new_email())
    p = page.page
    page.say("Create a Facebook post about Diwali with image")
    page.say("Remember the rangoli contest at noon")
    rows = page.history("Active")
    expect(rows).to_have_count(1)
    row = rows.first

    with p.expect_download() as json_download:
        row.get_by_role("button", name="More", exact=False).click()
        row.get_by_role("button", name="Export JSON").click()
    exported = json.loads(json_download.value.path().read_text(encoding="utf-8"))
    assert json_download.value.suggested_filename.endswith(".json")
    text = json.dumps(exported, ensure_ascii=False)
    assert "Remember the rangoli contest at noon" in text

    with p.expect_download() as pdf_download:
        row.get_by_role("button", name="More", exact=False).click()
        row.get_by_role("button", name="Export PDF").click()
    pdf = pdf_download.value.path().read_bytes()
    assert pdf.startswith(b"%PDF")
    assert pdf_download.value.suggested_filename.endswith(".pdf")

    # Every state the transfer panel goes through: its text, and the bar's state.
    p.evaluate(RECORD_TRANSFER)
    with p.expect_download() as zip_download:
        p.get_by_role("button", name="Export all (ZIP)").click()
    expect(p.locator("#transfer")).to_contain_text("Export saved as")
    states = p.evaluate("window.transferStates")
    # The job's own progress drove the bar (steps: each conversation read, then laid out).
    steps = [
        (int(m[1]), int(m[2]), hidden, value)
        for text, hidden, value in states
        if (m := re.fullmatch(r"Preparing your export: (\d+) of (\d+) steps", text))
    ]
    assert steps, states
    assert all(not hidden and value == round(100 * d / t) for d, t, hidden, value in steps)
    assert steps[-1][:2] == (2, 2)  # one conversation: read and laid out
    assert any(text.startswith("Downloading export: ") and not h for text, h, _ in states)
    assert states[-1][0].startswith("Export saved as") and states[-1][1] is True
    zip_path = tmp_path / zip_download.value.suggested_filename
    zip_download.value.save_as(zip_path)
    with zipfile.ZipFile(io.BytesIO(zip_path.read_bytes())) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        assert any(name.endswith(".json") for name in names)
        everything = b"".join(archive.read(name) for name in names if name.endswith(".json"))
        assert b"Remember the rangoli contest at noon" in everything

    other = new_page().open().sign_up(live_server.new_email("other"))
    expect(other.history("All")).to_have_count(0)
    other.page.locator("#import-file").set_input_files(str(zip_path))
    expect(other.page.locator("#transfer")).to_contain_text("1 conversation imported")
    imported = other.history("All")
    expect(imported).to_have_count(1)
    imported.first.get_by_role(
        "button", name="Create a Facebook post about Diwali with image", exact=True
    ).click()
    expect(other.page.locator("#messages")).to_contain_text("Remember the rangoli contest at noon")
