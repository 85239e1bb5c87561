"""The rate limits' runtime: configured policies, counters, and the overrides cache.

Overrides live in PostgreSQL (`app.ratelimit.service`). Each instance keeps a user's
overrides in memory for at most RATE_LIMIT_OVERRIDE_CACHE_SECONDS (2 s by default); the
instance that changes them drops its copy at once, so a change is in force everywhere
within that bound.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.text import normalize_email
from app.ratelimit.policies import (
    AUTH_POLICY,
    MAIL_POLICY,
    POLICY_NAMES,
    SHARED_POLICY,
    Policy,
    PolicyError,
    parse_policy,
)
from app.ratelimit.service import load_overrides
from app.ratelimit.storage import Decision, Limiter, WindowState

MAX_CACHED_USERS = 10_000


class OverrideCache:
    """A user's parsed overrides, kept for at most `ttl_seconds` in this process."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[uuid.UUID, tuple[float, dict[str, Policy]]] = {}

    async def get(
        self, user_id: uuid.UUID, session: AsyncSession, namespace: str
    ) -> dict[str, Policy]:
        """Read through the request's own session: a request needs one pooled connection,
        never two (two per request deadlock the pool under load)."""
        now = time.monotonic()
        entry = self._entries.get(user_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        raw = await load_overrides(session=session, user_id=user_id)
        policies: dict[str, Policy] = {}
        for name, text in raw.items():
            try:
                policies[name] = parse_policy(name, text, namespace=namespace)
            except PolicyError:
                continue  # written before a rule change: ignore, the configured policy applies
        if self.ttl_seconds > 0:
            if len(self._entries) >= MAX_CACHED_USERS:
                self._entries.clear()
            self._entries[user_id] = (now + self.ttl_seconds, policies)
        return policies

    def invalidate(self, user_id: uuid.UUID) -> None:
        self._entries.pop(user_id, None)


@dataclass(frozen=True)
class Quota:
    """One window of one policy as the caller stands now."""

    policy: str
    window: str
    window_seconds: int
    limit: str
    remaining: int | None
    reset_at: float | None
    overridden: bool
    key: str


class RateLimits:
    """Built once per app from Settings; holds the counters and the overrides cache."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.namespace = settings.rate_limit_key_prefix
        self.policies: dict[str, Policy] = {
            name: parse_policy(name, configured_policy(settings, name), namespace=self.namespace)
            for name in POLICY_NAMES
        }
        self.limiter = Limiter(
            settings.rate_limit_storage_url,
            timeout_seconds=settings.rate_limit_storage_timeout_seconds,
        )
        self.overrides = OverrideCache(settings.rate_limit_override_cache_seconds)

    async def user_policy(
        self, name: str, *, user_id: uuid.UUID, session: AsyncSession
    ) -> tuple[Policy, bool]:
        """The policy in force for this user, and whether it is an override."""
        overrides = await self.overrides.get(user_id, session, self.namespace)
        if name in overrides:
            return overrides[name], True
        return self.policies[name], False

    async def hit_user(self, name: str, *, user_id: uuid.UUID, session: AsyncSession) -> Decision:
        policy, _ = await self.user_policy(name, user_id=user_id, session=session)
        return await self.limiter.hit(policy, "user", str(user_id))

    async def hit_auth(self, *, ip: str, email: str | None) -> Decision:
        """Counts an auth attempt against the IP and (when given) against the email."""
        policy = self.policies[AUTH_POLICY]
        by_ip = await self.limiter.hit(policy, "ip", ip)
        if not by_ip.allowed or email is None:
            return by_ip
        by_email = await self.limiter.hit(policy, "email", email)
        return _stricter(by_ip, by_email)

    async def hit_ip(self, name: str, *, ip: str) -> Decision:
        """Counts a request against the client IP (the shared-link pages)."""
        return await self.limiter.hit(self.policies[name], "ip", ip)

    async def hit_account(self, email: str) -> Decision:
        """Counts a sign-in attempt against the (normalised) address of the account."""
        return await self.limiter.hit(self.policies[AUTH_POLICY], "email", email)

    async def hit_mail_address(self, email: str) -> Decision:
        """Counts a reset or verification mail asked for this (normalised) address."""
        return await self.limiter.hit(self.policies[MAIL_POLICY], "email", email)

    async def hit_mail_user(self, user_id: uuid.UUID) -> Decision:
        """Counts a mail about to be sent to this account, whichever way it was asked for."""
        return await self.limiter.hit(self.policies[MAIL_POLICY], "user", str(user_id))

    async def quotas(
        self,
        *,
        user_id: uuid.UUID,
        ip: str,
        email: str,
        session: AsyncSession,
    ) -> list[Quota]:
        """Every policy's windows for this caller, counting nothing. `email` is the
        account's address as stored; it is normalised as sign-in attempts count it."""
        email = normalize_email(email)
        quotas: list[Quota] = []
        for name in POLICY_NAMES:
            states: tuple[WindowState, ...] | None = None
            if name == AUTH_POLICY:
                policy, overridden, key = self.policies[name], False, "ip+email"
                if self.enabled:
                    by_ip = await self.limiter.peek(policy, "ip", ip)
                    by_email = await self.limiter.peek(policy, "email", email)
                    states = _stricter_states(by_ip, by_email)
            elif name == MAIL_POLICY:
                policy, overridden, key = self.policies[name], False, "email+user"
                if self.enabled:
                    by_user = await self.limiter.peek(policy, "user", str(user_id))
                    by_email = await self.limiter.peek(policy, "email", email)
                    states = _stricter_states(by_user, by_email)
            elif name == SHARED_POLICY:
                policy, overridden, key = self.policies[name], False, "ip"
                if self.enabled:
                    states = await self.limiter.peek(policy, "ip", ip)
            else:
                policy, overridden = await self.user_policy(name, user_id=user_id, session=session)
                key = "user"
                if self.enabled:
                    states = await self.limiter.peek(policy, "user", str(user_id))
            for i, window in enumerate(policy.windows):
                state = states[i] if states else None
                quotas.append(
                    Quota(
                        policy=name,
                        window=window.window,
                        window_seconds=window.seconds,
                        limit=window.limit,
                        remaining=state.remaining if state else None,
                        reset_at=state.reset_at if state else None,
                        overridden=overridden,
                        key=key,
                    )
                )
        return quotas


def configured_policy(settings: Settings, name: str) -> str:
    value: str = getattr(settings, f"rate_limit_{name}")
    return value


def _stricter_states(
    a: tuple[WindowState, ...] | None, b: tuple[WindowState, ...] | None
) -> tuple[WindowState, ...] | None:
    """Window by window, whichever of the two leaves less."""
    if a is None or b is None:
        return a or b
    return tuple(
        x if (x.remaining, -x.reset_at) <= (y.remaining, -y.reset_at) else y
        for x, y in zip(a, b, strict=True)
    )


def _stricter(a: Decision, b: Decision) -> Decision:
    states = _stricter_states(a.states or None, b.states or None) or ()
    rejected = a.rejected_by or b.rejected_by
    return Decision(allowed=a.allowed and b.allowed, states=states, rejected_by=rejected)
