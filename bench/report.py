"""Figures, tables and goals: printed as the run goes, then written as JSON and Markdown."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core.runtime import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
DOC_PATH = PROJECT_ROOT / "docs" / "performance.md"


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def fmt_ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    if value is None or math.isnan(value) or math.isinf(value):
        return "—"
    return f"{value:.2f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return None
    return a / b


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def text(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

        def line(cells: Sequence[str]) -> str:
            out = []
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
                out.append(cell.ljust(width) if i == 0 else cell.rjust(width))
            return "  ".join(out).rstrip()

        parts = [f"\n== {self.title} ==", line(self.columns), line(["-" * w for w in widths])]
        parts += [line(r) for r in self.rows]
        parts += [f"  note: {n}" for n in self.notes]
        return "\n".join(parts)

    def markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
        body = ["| " + " | ".join(r) + " |" for r in self.rows]
        notes = [f"- {n}" for n in self.notes]
        return "\n".join([f"### {self.title}", "", head, sep, *body, "", *notes]).rstrip() + "\n"


@dataclass
class Goal:
    name: str
    target: str
    value: float | None  # the measured ratio
    met: bool | None  # None: could not be measured in this run
    detail: str = ""
    unit: str = "x"  # "x": a ratio; otherwise the unit of an absolute figure ("ms")

    def measured(self) -> str:
        if self.unit == "x":
            shown = fmt_ratio(self.value)
        else:
            shown = "—" if self.value is None else f"{fmt_ms(self.value)} {self.unit}"
        return shown + (f" ({self.detail})" if self.detail else "")

    def verdict(self) -> str:
        return "n/a" if self.met is None else ("met" if self.met else "NOT met")


def ratio_goal(
    name: str,
    target: str,
    numerator: float | None,
    denominator: float | None,
    ok: Callable[[float], bool],
    unit: str = "ms",
) -> Goal:
    """A goal stated as numerator / denominator, both measured in this run."""
    r = ratio(numerator, denominator)
    detail = f"{fmt_ms(numerator)} vs {fmt_ms(denominator)} {unit}"
    return Goal(name, target, r, None if r is None else ok(r), detail)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


@dataclass
class Report:
    mode: str
    command: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tables: list[Table] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def show(self, table: Table) -> None:
        self.tables.append(table)
        print(table.text(), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", flush=True)

    def goals_table(self) -> Table:
        table = Table("Goals", ["goal", "target", "measured", "verdict"])
        for g in self.goals:
            table.add(g.name, g.target, g.measured(), g.verdict())
        return table

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "command": self.command,
            "started_at": self.started_at.isoformat(),
            "revision": git_revision(),
            "machine": machine(),
            "environment": self.environment,
            "figures": self.figures,
            "goals": [asdict(g) for g in self.goals],
            "tables": [asdict(t) for t in self.tables],
            "notes": self.notes,
        }

    def write_json(self) -> Path:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"bench-{self.mode}-{stamp}.json"
        text = json.dumps(self.to_json(), indent=2, default=str)
        latest = RESULTS_DIR / f"latest-{self.mode}.json"
        latest.write_text(text)
        if self.mode == "smoke":  # the test's run: keep only the latest
            return latest
        path.write_text(text)
        return path

    def markdown(self, elapsed_s: float) -> str:
        m = machine()
        env = ", ".join(f"{k}: {v}" for k, v in self.environment.items())
        lines = [
            f"## `{self.command}` — {self.started_at:%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, "
            f"Python {m['python']}, Linux {m['kernel']}. Revision {git_revision()}. "
            f"Run took {elapsed_s:.0f} s.",
            "",
            f"Environment: {env}.",
            "",
            self.goals_table().markdown(),
        ]
        for t in self.tables:
            lines.append(t.markdown())
        if self.notes:
            lines += ["Notes from the run:", "", *[f"- {n}" for n in self.notes], ""]
        return "\n".join(lines)


def write_doc(report: Report, elapsed_s: float, intro: str) -> None:
    """docs/performance.md keeps the latest full run and the latest quick run."""
    sections: dict[str, str] = {}
    marker = "<!-- bench:"
    if DOC_PATH.exists():
        text = DOC_PATH.read_text()
        for chunk in text.split(marker)[1:]:
            mode, _, body = chunk.partition("-->")
            body = body.split("<!-- /bench -->")[0]
            sections[mode.strip()] = body.strip("\n")
    sections[report.mode] = report.markdown(elapsed_s)
    order = [m for m in ("full", "quick") if m in sections]
    parts = [intro.rstrip() + "\n"]
    for mode in order:
        parts.append(f"{marker}{mode} -->\n{sections[mode].rstrip()}\n<!-- /bench -->\n")
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text("\n".join(parts))
