"""SMTP_URL, checked where it is parsed: a bad value stops `Settings()` with its name."""

from __future__ import annotations

from app.core.config import Settings, settings_check
from app.mail.service import parse_smtp_url


@settings_check
def check_smtp_url(settings: Settings) -> None:
    if settings.smtp_url:
        parse_smtp_url(settings.smtp_url)
