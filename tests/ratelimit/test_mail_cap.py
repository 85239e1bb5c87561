"""A daily cap on reset and verification mail, per address and per account, that says
nothing about which accounts exist."""

from __future__ import annotations

from email import message_from_bytes

import pytest

from tests.conftest import drain_mail
from tests.ratelimit.conftest import client_from, new_user


@pytest.fixture
def settings(settings):
    # Mail: 3/day (TEST_POLICIES). Room in the per-minute auth limit, so only the cap counts.
    return settings.model_copy(update={"rate_limit_auth": "30/minute"})


def _mail_to(settings, address: str) -> int:
    outbox = settings.data_dir / "outbox"
    if not outbox.exists():
        return 0
    return sum(
        1 for eml in outbox.glob("*.eml") if message_from_bytes(eml.read_bytes())["To"] == address
    )


async def _ask(app, path: str, email: str):
    async with client_from(app) as c:  # a new client address each time: only the cap counts
        r = await c.post(path, json={"email": email})
    await drain_mail(app)
    return r


async def test_an_address_gets_its_days_mail_then_a_clear_429_whether_or_not_it_exists(
    app, settings
):
    await new_user(app, "known@example.com")
    answers = {}
    for address in ("known@example.com", "nobody@example.com"):
        first = [await _ask(app, "/auth/forgot-password", address) for _ in range(2)]
        verify = await _ask(app, "/auth/request-verify-token", address)
        assert [r.status_code for r in [*first, verify]] == [202, 202, 202]
        over = await _ask(app, "/auth/forgot-password", address)
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) > 3600
        answers[address] = over.json()
    # The same answer for an account and for an address without one.
    assert answers["known@example.com"] == answers["nobody@example.com"]
    assert answers["known@example.com"]["code"] == "rate_limited"
    assert answers["known@example.com"]["policy"] == "mail"
    assert "3/day" in answers["known@example.com"]["detail"]
    # Another spelling of the address shares its count.
    assert (await _ask(app, "/auth/forgot-password", " Known@Example.COM")).status_code == 429
    assert _mail_to(settings, "known@example.com") == 3
    assert _mail_to(settings, "nobody@example.com") == 0


async def test_an_account_gets_no_more_than_its_days_mail_however_it_is_asked(app, settings):
    settings.require_verified_email = True
    address = "busy@example.com"
    await new_user(app, address)
    await drain_mail(app)
    assert _mail_to(settings, address) == 1  # the verification mail of the sign-up
    # The address has asked twice, but the account has had three mails by then...
    for _ in range(3):
        assert (await _ask(app, "/auth/forgot-password", address)).status_code == 202
    # ...so the third ask is answered as usual, but nothing more is sent.
    assert _mail_to(settings, address) == 3
    assert (await _ask(app, "/auth/forgot-password", address)).status_code == 429
