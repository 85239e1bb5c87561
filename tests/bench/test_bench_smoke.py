"""`make bench-quick` in its smallest mode: every section runs and prints its table.

No timing is asserted: figures belong to the benchmark. What a user of `make bench` would
notice is checked: it finishes, compares all five designs, and reports its goals.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from app.core.runtime import PROJECT_ROOT

pytestmark = pytest.mark.process

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DESIGNS = (
    "in-memory dict",
    "Redis JSON blob",
    "Postgres JSONB blob",
    "Chatkeep (append-only)",
    "floor (asyncpg, bare SQL)",
)


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_bench_quick_smoke_prints_every_table() -> None:
    if not _redis_up():
        message = "the bench compares against Redis, and none answers at 127.0.0.1:6379"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if k not in {"BENCH_DATABASE_URL", "MAKEFLAGS"}}
    result = subprocess.run(
        ["make", "--no-print-directory", "bench-quick", "BENCH_ARGS=--mode smoke --no-doc"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]

    for title in (
        "== Turn cost vs history length",
        "== Chatkeep's turn against each design",
        "== Sweeper: archiving",
        "== History and export",
        "== Real model:",
        "== Live events fan-out:",
        "== PDF layout",
        "== Encryption at rest: one chat turn",
        "== Opening a conversation: a 50-message chain",
        "== /v1/chat/completions next to POST /api/chat",
        "== Goals ==",
    ):
        assert title in out, f"missing table {title!r}:\n{out[-3000:]}"
    turn_table = out.split("== Turn cost vs history length")[1].split("\n== ")[0]
    for design in DESIGNS:
        assert design in turn_table, f"{design} missing from the turn-cost table"
    assert "Redis at" not in out, "Redis answered PING but the bench could not use it"

    saved = json.loads((PROJECT_ROOT / "bench" / "results" / "latest-smoke.json").read_text())
    stores = {row["store"] for row in saved["figures"]["turn_cost"]}
    assert stores == set(DESIGNS)
    assert all(row["turns"] > 0 for row in saved["figures"]["turn_cost"])
    assert saved["figures"]["encryption_turn"]["sealed_ms"] > 0
    assert {g["name"] for g in saved["goals"]} >= {
        "Chatkeep turn / floor turn at 10 msgs (median)",
        "chat turn p99 during the sweep / before it",
        "PDF of 8,000 lines / 1,000 lines (CPU time)",
        "opening 50 branches / a 50-message chain (median)",
    }
    # A /v1 completion, JSON and streamed, is timed next to a POST /api/chat turn.
    v1 = saved["figures"]["v1_vs_api_chat"]
    v1_table = out.split("== /v1/chat/completions next to POST /api/chat")[1].split("\n== ")[0]
    for kind in (
        "POST /api/chat (JSON, a message on its conversation)",
        "POST /v1/chat/completions (JSON, its conversation resent)",
        "POST /v1/chat/completions (streamed, its conversation resent)",
    ):
        assert kind in v1_table, f"{kind} missing from the /v1 table"
        assert v1[kind]["median_ms"] > 0
    # The sweep archived every expired session it was given.
    assert saved["figures"]["sweeper"]["archived"] == saved["figures"]["sweeper"]["sessions"]
