"""PDF layout cost against the size of a message: time per 1,000 lines at 1k, 8k, 15k.

One message of short lines (`"x\\n" * n`, under MAX_MESSAGE_CHARS at 15,000 lines),
rendered in this process (no database: layout is the cost). Linear layout keeps the time
per 1,000 lines flat; the goal is the 8k total at most 10x the 1k total.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import Any

from bench.modes import Mode
from bench.pg import BenchServer
from bench.report import Report, Table, fmt_ms, ratio_goal


def _seconds(lines: int, repeats: int) -> float:
    from app.typesetting.pdf import PdfConversation, PdfMessage, render_conversation_pdf

    now = datetime(2026, 1, 1, tzinfo=UTC)
    conversation = PdfConversation("Lines", "bench-pdf-lines", now, now, None, 1)
    best = float("inf")
    for _ in range(repeats):
        out = io.BytesIO()
        started = time.process_time()
        render_conversation_pdf(conversation, [PdfMessage(1, "user", "x\n" * lines, now)], out)
        best = min(best, time.process_time() - started)
    return best


async def run(server: BenchServer, report: Report, mode: Mode) -> dict[str, Any]:
    del server  # layout only
    _seconds(200, 1)  # fonts and styles loaded once, outside the figures
    table = Table(
        f"PDF layout: one message of short lines (CPU time, best of {mode.pdf_layout_repeats})",
        ["lines", "total ms", "ms per 1,000 lines"],
    )
    rows: dict[int, float] = {}
    for lines in mode.pdf_layout_lines:
        seconds = _seconds(lines, mode.pdf_layout_repeats)
        rows[lines] = seconds
        table.add(f"{lines:,}", fmt_ms(seconds * 1000), fmt_ms(seconds * 1000 / (lines / 1000)))
    report.show(table)
    report.goals.append(
        ratio_goal(
            "PDF of 8,000 lines / 1,000 lines (CPU time)",
            "<= 10x",
            rows[8_000] * 1000,
            rows[1_000] * 1000,
            lambda r: r <= 10,
        )
    )
    return {
        "pdf_layout": [
            {"lines": n, "seconds": s, "ms_per_1000_lines": s * 1e6 / n} for n, s in rows.items()
        ]
    }
