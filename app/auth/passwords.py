"""The password policy (NIST 800-63B) and password hashing off the event loop.

Policy: at least PASSWORD_MIN_LENGTH characters (8 by default), up to 1024, no
composition rules; refused when zxcvbn scores it below PASSWORD_MIN_SCORE (common
passwords, keyboard walks, repeats, dates) or when it contains the email's local part.
The refusal says why in plain words.

Hashing (argon2) and zxcvbn cost tens of milliseconds of CPU each. They run in a small
pool of PASSWORD_HASH_THREADS worker threads, so a burst of sign-ins queues there instead
of stalling every other request on the event loop.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from fastapi_users.password import PasswordHelper
from zxcvbn import zxcvbn

from app.core.metrics import PASSWORD_HASH_SECONDS
from app.core.text import normalize_email

MAX_PASSWORD_LENGTH = 1024
# zxcvbn scores the first characters only; what lies past them only adds strength.
ZXCVBN_MAX_CHARS = 72  # zxcvbn refuses longer input
MIN_LOCAL_PART = 3

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None
_pool_size = 2


def configure_pool(threads: int) -> None:
    global _pool, _pool_size
    if threads != _pool_size and _pool is not None:
        _pool.shutdown(wait=False)
        _pool = None
    _pool_size = threads


async def in_hash_pool(fn: Callable[..., T], *args: object) -> T:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="password")
    started = time.perf_counter()
    try:
        return await asyncio.get_running_loop().run_in_executor(_pool, partial(fn, *args))
    finally:
        PASSWORD_HASH_SECONDS.observe(time.perf_counter() - started)


def password_helper() -> PasswordHelper:
    """The hasher of stored passwords: argon2 with fastapi-users' parameters."""
    return PasswordHelper()


def password_problem(
    password: str, *, email: str | None, min_length: int, min_score: int
) -> str | None:
    """Why this password is refused, in words a person understands; None when it is fine."""
    if len(password) < min_length:
        return f"Use at least {min_length} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    folded = unicodedata.normalize("NFKC", password).casefold()
    local = normalize_email(email).split("@", 1)[0] if email else ""
    if len(local) >= MIN_LOCAL_PART and local in folded:
        return "Do not use your email address (or the part before the @) in your password."
    hints = [h for h in (local, normalize_email(email) if email else "", "chatkeep") if h]
    result = zxcvbn(password[:ZXCVBN_MAX_CHARS], user_inputs=hints)
    if result["score"] < min_score:
        warning = (result.get("feedback") or {}).get("warning") or ""
        because = f" {warning.rstrip('.')}." if warning else ""
        return (
            "This password is too common or too easy to guess."
            f"{because} A few unrelated words make a strong password that is easy to remember."
        )
    return None
