"""Policies: named sets of windows parsed from `limits` strings such as "20/minute;500/day".

Window keys leave the amount out (the `limits` default puts it in), so changing a user's
limit with an override keeps the requests already counted in the window.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

# Keyed by user id.
USER_POLICIES = ("chat", "export", "import", "credentials", "default")
# Keyed by client IP and by the email being signed in or registered.
AUTH_POLICY = "auth"
# Keyed by client IP: the pages anyone with a share link can open.
SHARED_POLICY = "shared"
# Keyed by the address a reset or verification mail is asked for, and by the account it
# goes to: a cap on mail sent to anyone, on top of the auth policy's per-minute count.
MAIL_POLICY = "mail"
POLICY_NAMES = (*USER_POLICIES, AUTH_POLICY, SHARED_POLICY, MAIL_POLICY)
MAX_POLICY_TEXT = 200


class PolicyError(ValueError):
    """A policy string that does not parse; the message says what is wrong."""


def _key_for(self: RateLimitItem, *identifiers: bytes | str | int | float) -> str:
    parts = [k.decode() if isinstance(k, bytes) else str(k) for k in identifiers]
    return f"{self.namespace}/" + "/".join([*parts, str(self.multiples), self.GRANULARITY.name])


@functools.cache
def _stable_key_class(cls: type[RateLimitItem]) -> type[RateLimitItem]:
    # Same granularity, same expiry; only the storage key differs.
    return type(cls.__name__, (cls,), {"key_for": _key_for})


@dataclass(frozen=True)
class Window:
    policy: str
    item: RateLimitItem

    @property
    def amount(self) -> int:
        return self.item.amount

    @property
    def seconds(self) -> int:
        return self.item.get_expiry()

    @property
    def window(self) -> str:
        """'minute', or '5minutes' for a window of several units."""
        unit = self.item.GRANULARITY.name
        return unit if self.item.multiples == 1 else f"{self.item.multiples}{unit}s"

    @property
    def name(self) -> str:
        """The policy name in the RateLimit headers, e.g. 'chat-minute'."""
        return f"{self.policy}-{self.window}"

    @property
    def limit(self) -> str:
        """The window in `limits` notation, e.g. '20/minute' or '10/5 minutes'."""
        unit = self.item.GRANULARITY.name
        per = unit if self.item.multiples == 1 else f"{self.item.multiples} {unit}s"
        return f"{self.amount}/{per}"


@dataclass(frozen=True)
class Policy:
    name: str
    text: str
    windows: tuple[Window, ...]


def parse_policy(name: str, text: str, *, namespace: str = "chatkeep") -> Policy:
    """Parses e.g. "20/minute;500/day"; windows come out shortest first."""
    if name not in POLICY_NAMES:
        raise PolicyError(f"unknown rate-limit policy {name!r} (known: {', '.join(POLICY_NAMES)})")
    if not isinstance(text, str) or len(text) > MAX_POLICY_TEXT:
        raise PolicyError(
            f"rate limit for {name!r} must be a string of at most {MAX_POLICY_TEXT} characters"
        )
    try:
        items = parse_many(text.strip())
    except ValueError:
        raise PolicyError(
            f"rate limit for {name!r} is not valid: {text!r} "
            "(expected e.g. '20/minute' or '20/minute;500/day')"
        ) from None
    windows: list[Window] = []
    for item in sorted(items, key=lambda i: i.get_expiry()):
        if item.amount < 1:
            raise PolicyError(
                f"rate limit for {name!r} must allow at least 1 request per window: {text!r}"
            )
        if any(w.seconds == item.get_expiry() for w in windows):
            raise PolicyError(
                f"rate limit for {name!r} has two windows of the same length: {text!r}"
            )
        stable = _stable_key_class(type(item))(
            item.amount, item.multiples, namespace=f"{namespace}/{name}"
        )
        windows.append(Window(policy=name, item=stable))
    return Policy(name=name, text=text.strip(), windows=tuple(windows))
