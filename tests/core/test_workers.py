"""WORKERS=0 (the default): as many web processes as the cores, where that splits nothing."""

from __future__ import annotations

import pytest

from app.cli import build_parser
from app.core.config import AUTO_WORKERS_MAX, Settings, usable_cpus

SECRET = "s" * 48


def _settings(**values: object) -> Settings:
    return Settings(secret_key=SECRET, _env_file=None, **values)  # type: ignore[call-arg]


def test_the_cores_are_used_when_nothing_is_held_per_process():
    shared = _settings(
        workers=0, assistant_backend="openai", rate_limit_storage_url="redis://127.0.0.1:6379/0"
    )
    assert shared.single_process_reason() is None
    assert shared.resolved_workers() == max(1, min(AUTO_WORKERS_MAX, usable_cpus()))
    off = _settings(workers=0, assistant_backend="builtin", rate_limit_enabled=False)
    assert off.resolved_workers() == shared.resolved_workers()
    args = build_parser(shared).parse_args(["serve"])
    assert args.workers == shared.resolved_workers()


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"assistant_backend": "local", "rate_limit_enabled": False}, "ASSISTANT_BACKEND"),
        ({"assistant_backend": "openai"}, "RATE_LIMIT_STORAGE_URL"),
    ],
)
def test_one_process_when_the_cores_would_split_something(values, reason):
    settings = _settings(workers=0, **values)
    assert settings.resolved_workers() == 1
    assert reason in (settings.single_process_reason() or "")


def test_workers_set_wins():
    settings = _settings(workers=3, assistant_backend="local")
    assert settings.resolved_workers() == 3
    assert settings.single_process_reason() is None
    assert build_parser(settings).parse_args(["serve", "--workers", "2"]).workers == 2
