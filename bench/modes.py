"""How big each run is: `full` (make bench), `quick` (make bench-quick), `smoke` (the test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    # turn cost
    history_sizes: tuple[int, ...]
    turns: int
    min_turns: int
    warmup_turns: int
    turn_cap_seconds: float
    # HTTP
    http: bool
    http_concurrency: tuple[int, ...]
    http_seconds: int
    http_turns_per_conversation: int
    http_users: int
    # sweeper
    sweep_sessions: int
    sweep_live_clients: int
    sweep_before_seconds: float
    # history and export
    history_sessions: int
    history_messages_per_session: int
    history_repeats: int
    pdf_messages: int
    zip_conversations: int
    zip_messages_per_conversation: int
    # real model (bench/real_model.py); no JSON users: the section is skipped
    real_model_seconds: float
    real_model_json_users: tuple[int, ...]
    real_model_stream_users: tuple[int, ...]
    real_model_latency_turns: int
    real_model_latency_concurrency: int
    real_model_event_streams: int
    # PDF layout against message size
    pdf_layout_lines: tuple[int, ...]
    pdf_layout_repeats: int
    # opening a tree against a chain (bench/tree_cost.py): the active path's length
    tree_path: int


FULL = Mode(
    name="full",
    history_sizes=(10, 100, 1_000, 10_000),
    turns=200,
    min_turns=30,
    warmup_turns=10,
    turn_cap_seconds=12.0,
    http=True,
    http_concurrency=(1, 16, 64),
    http_seconds=10,
    http_turns_per_conversation=8,
    http_users=16,
    sweep_sessions=1_000_000,
    sweep_live_clients=4,
    sweep_before_seconds=5.0,
    history_sessions=10_000,
    history_messages_per_session=100,
    history_repeats=50,
    pdf_messages=1_000,
    zip_conversations=1_000,
    zip_messages_per_conversation=10,
    real_model_seconds=3.0,
    real_model_json_users=(100, 500),
    real_model_stream_users=(100,),
    real_model_latency_turns=100,
    real_model_latency_concurrency=20,
    real_model_event_streams=1_000,
    pdf_layout_lines=(1_000, 8_000, 15_000),
    pdf_layout_repeats=3,
    tree_path=1_000,
)

QUICK = Mode(
    name="quick",
    history_sizes=(10, 100, 1_000, 10_000),
    turns=30,
    min_turns=6,
    warmup_turns=3,
    turn_cap_seconds=0.6,
    http=True,
    http_concurrency=(16,),
    http_seconds=2,
    http_turns_per_conversation=8,
    http_users=4,
    sweep_sessions=20_000,
    sweep_live_clients=2,
    sweep_before_seconds=1.0,
    history_sessions=500,
    history_messages_per_session=40,
    history_repeats=10,
    pdf_messages=200,
    zip_conversations=30,
    zip_messages_per_conversation=10,
    real_model_seconds=3.0,
    real_model_json_users=(100,),
    real_model_stream_users=(100,),
    real_model_latency_turns=40,
    real_model_latency_concurrency=20,
    real_model_event_streams=300,
    pdf_layout_lines=(1_000, 8_000, 15_000),
    pdf_layout_repeats=1,
    tree_path=1_000,
)

SMOKE = Mode(
    name="smoke",
    history_sizes=(10, 1_000),
    turns=6,
    min_turns=3,
    warmup_turns=2,
    turn_cap_seconds=0.5,
    http=False,
    http_concurrency=(4,),
    http_seconds=1,
    http_turns_per_conversation=4,
    http_users=2,
    sweep_sessions=1_000,
    sweep_live_clients=2,
    sweep_before_seconds=0.3,
    history_sessions=40,
    history_messages_per_session=6,
    history_repeats=3,
    pdf_messages=10,
    zip_conversations=3,
    zip_messages_per_conversation=4,
    real_model_seconds=1.0,
    real_model_json_users=(4,),
    real_model_stream_users=(4,),
    real_model_latency_turns=4,
    real_model_latency_concurrency=2,
    real_model_event_streams=10,
    pdf_layout_lines=(1_000, 8_000),
    pdf_layout_repeats=1,
    tree_path=50,
)

MODES = {m.name: m for m in (FULL, QUICK, SMOKE)}
