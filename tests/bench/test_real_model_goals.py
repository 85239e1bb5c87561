"""The real-model section's goals: a row whose turns failed is never reported as met."""

from __future__ import annotations

from collections import Counter

from bench.real_model import Burst, failures_goal


def _burst(name: str, statuses: dict[str, int]) -> Burst:
    return Burst(
        name=name,
        path="streamed",
        turns=sum(statuses.values()),
        concurrency=20,
        wall_s=1.0,
        statuses=Counter(statuses),
        first_delta_ms=[250.0],
        peak_in_use=1,
        peak_in_use_thinking=None,
        peak_open=1,
        thinking_window_s=None,
        model_requests=100,
        model_peak_in_flight=20,
    )


def test_any_failed_turn_in_any_row_is_a_goal_not_met() -> None:
    clean = _burst("500 at once", {"200": 500})
    goal = failures_goal([clean])
    assert goal.met is True and goal.value == 0
    assert goal.detail == "500 turns, none failed"

    # The review's row: 14 of 100 turns failed fast after the 500-user burst.
    failing = _burst("streamed, 20 at a time", {"200": 86, "502 upstream_timeout": 14})
    goal = failures_goal([clean, failing])
    assert goal.met is False and goal.value == 14
    assert goal.detail == "streamed, 20 at a time: 14"
    # A 503 is a failed turn too.
    goal = failures_goal([_burst("JSON", {"200": 99, "503 server_busy": 1})])
    assert goal.met is False and goal.value == 1
