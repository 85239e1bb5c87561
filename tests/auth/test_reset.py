"""Forgot and reset password through a real SMTP server; verification; the .eml outbox."""

from __future__ import annotations

import time

import pytest

from app.core.metrics import MAIL_MESSAGES
from app.mail.service import parse_smtp_url
from tests.auth.conftest import link_token
from tests.conftest import TEST_PASSWORD, drain_mail, login, register
from tests.processes import free_port

NEW_PASSWORD = "violet tractor under moonlight"


@pytest.fixture
def settings(settings, smtp_server):
    settings.smtp_url = smtp_server.url
    settings.mail_retry_seconds = 0.05
    settings.public_url = "https://chat.example.org"
    return settings


async def _forgot(client, app, email: str):
    r = await client.post("/auth/forgot-password", json={"email": email})
    await drain_mail(app)
    return r


async def test_reset_by_email_signs_out_everywhere_and_works_once(client, app, smtp_server):
    email = "forgetful@example.com"
    phone = await register(client, email)
    laptop = await login(client, email)

    r = await _forgot(client, app, email)
    assert r.status_code == 202
    [message] = await smtp_server.wait_for(email)
    assert message["Subject"] == "Reset your Chatkeep password"
    assert message["From"] == app.state.settings.mail_from
    assert "https://chat.example.org/reset-password#token=" in message.get_content()
    token = link_token(message, "reset-password")

    # The policy applies to the new password too.
    weak = await client.post("/auth/reset-password", json={"token": token, "password": "12345678"})
    assert weak.status_code == 400
    assert weak.json()["code"] == "invalid_password"

    r = await client.post("/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    # Every sign-in made before the reset has ended.
    for headers in (phone, laptop):
        assert (await client.get("/users/me", headers=headers)).status_code == 401
    old = await client.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
    assert old.status_code == 400
    new = await client.post("/auth/jwt/login", data={"username": email, "password": NEW_PASSWORD})
    assert new.status_code == 200

    # The link worked once.
    again = await client.post(
        "/auth/reset-password", json={"token": token, "password": "yet another fine passphrase"}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "reset_password_bad_token"
    assert "not valid any more" in again.json()["detail"]


async def test_a_reset_link_dies_when_the_email_changes(client, app, smtp_server):
    email = "relocating@example.com"
    headers = await register(client, email)
    await _forgot(client, app, email)
    [message] = await smtp_server.wait_for(email)
    token = link_token(message, "reset-password")

    r = await client.patch(
        "/users/me",
        json={"email": "relocated@example.com", "currentPassword": TEST_PASSWORD},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post("/auth/reset-password", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 400
    assert r.json()["code"] == "reset_password_bad_token"
    r = await client.post(
        "/auth/jwt/login", data={"username": "relocated@example.com", "password": TEST_PASSWORD}
    )
    assert r.status_code == 200  # the password did not change

    # A link mailed to the new address works.
    await _forgot(client, app, "relocated@example.com")
    [fresh] = await smtp_server.wait_for("relocated@example.com")
    r = await client.post(
        "/auth/reset-password",
        json={"token": link_token(fresh, "reset-password"), "password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text


async def test_forgot_password_answers_the_same_for_unknown_emails(client, app, smtp_server):
    await register(client, "known@example.com")
    known = await _forgot(client, app, "known@example.com")
    unknown = await _forgot(client, app, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert len(await smtp_server.wait_for("known@example.com")) == 1
    assert await smtp_server.wait_for("nobody@example.com", timeout=0.2) == []


async def test_reset_tokens_expire(client, app, smtp_server, settings):
    import jwt

    email = "slow@example.com"
    await register(client, email)
    await _forgot(client, app, email)
    [message] = await smtp_server.wait_for(email)
    token = link_token(message, "reset-password")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert 0 < claims["exp"] - time.time() <= settings.reset_token_ttl_seconds == 1800
    assert "30 minutes" in message.get_content()


async def test_mail_failure_is_counted_and_answers_the_same(client, app, settings):
    await register(client, "unlucky@example.com")
    # Nothing listens there.
    app.state.mailer.target = parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")
    before = MAIL_MESSAGES.labels("reset", "failed")._value.get()
    r = await _forgot(client, app, "unlucky@example.com")
    assert r.status_code == 202
    assert MAIL_MESSAGES.labels("reset", "failed")._value.get() == before + 1


async def test_verification_is_required_to_chat_when_configured(client, app, smtp_server, settings):
    settings.require_verified_email = True
    email = "new@example.com"
    headers = await register(client, email)  # signing in works unverified
    [message] = await smtp_server.wait_for(email)
    assert message["Subject"] == "Confirm your email for Chatkeep"

    body = {"messages": [{"role": "user", "content": "hello"}]}
    refused = await client.post("/api/chat", json=body, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "email_not_verified"
    assert "confirm your email" in refused.json()["detail"]

    # "Resend" asks again; the newest link verifies.
    r = await client.post("/auth/request-verify-token", json={"email": email})
    assert r.status_code == 202
    await drain_mail(app)
    messages = await smtp_server.wait_for(email, count=2)
    token = link_token(messages[-1], "verify-email")
    r = await client.post("/auth/verify", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["isVerified"] is True
    assert (await client.post("/api/chat", json=body, headers=headers)).status_code == 200


async def test_without_smtp_mail_goes_to_the_outbox(client, app, settings, data_dir, caplog):
    app.state.mailer.target = None
    await register(client, "laptop@example.com")
    with caplog.at_level("WARNING", logger="app.mail"):
        await _forgot(client, app, "laptop@example.com")
    [eml] = sorted((data_dir / "outbox").glob("*.eml"))
    text = eml.read_text()
    assert "To: laptop@example.com" in text
    assert "reset-password#token=" in text
    assert str(eml.resolve()) in caplog.text
