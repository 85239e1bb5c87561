"""The rate-limit settings, checked where they are parsed: a bad RATE_LIMIT_* value stops
`Settings()`, and so the start, with the variable's name."""

from __future__ import annotations

from app.core.config import Settings, settings_check
from app.ratelimit.policies import POLICY_NAMES, PolicyError, parse_policy
from app.ratelimit.storage import async_storage_url


@settings_check
def check_rate_limit_settings(settings: Settings) -> None:
    for name in POLICY_NAMES:
        try:
            parse_policy(name, getattr(settings, f"rate_limit_{name}"))
        except PolicyError as exc:
            raise ValueError(f"RATE_LIMIT_{name.upper()}: {exc}") from None
    async_storage_url(settings.rate_limit_storage_url)
