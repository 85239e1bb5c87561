"""Session ids: `session_<unix ms>_<128+ random bits, url-safe>` as in the original design."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

SESSION_ID_RANDOM_BYTES = 18  # 144 bits
SESSION_ID_PATTERN = re.compile(r"^session_\d{1,16}_[A-Za-z0-9_-]{22,64}$")
SESSION_ID_MAX_LENGTH = 100


def new_session_id(now: datetime) -> str:
    millis = int(now.timestamp() * 1000)
    return f"session_{millis}_{secrets.token_urlsafe(SESSION_ID_RANDOM_BYTES)}"


def is_well_formed(session_id: str | None) -> bool:
    return (
        session_id is not None
        and len(session_id) <= SESSION_ID_MAX_LENGTH
        and SESSION_ID_PATTERN.fullmatch(session_id) is not None
    )
