"""Registering an address that already has an account: the answer says so, the account
stays as it was, and its owner hears of the attempt."""

from __future__ import annotations

import pytest

from tests.conftest import drain_mail, login, register

OTHER_PASSWORD = "lantern meadow copper seventeen"


@pytest.fixture
def settings(settings, smtp_server):
    settings.smtp_url = smtp_server.url
    settings.public_url = "https://chat.example.org"
    return settings


async def test_registering_a_taken_address_tells_and_mails_its_owner(client, app, smtp_server):
    owner = await register(client, "taken@example.com")
    await drain_mail(app)
    assert smtp_server.messages == []  # a new account gets no such mail

    again = await client.post(
        "/auth/register", json={"email": "Taken@Example.com", "password": OTHER_PASSWORD}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "register_user_already_exists"
    await drain_mail(app)
    [message] = await smtp_server.wait_for("taken@example.com")
    assert message["Subject"] == "Your Chatkeep account"
    body = message.get_content()
    assert "tried to create a Chatkeep account" in body
    assert "https://chat.example.org/login" in body
    assert OTHER_PASSWORD not in body

    # Nothing changed: the old password and the existing sign-in still work, the other not.
    assert (await client.get("/users/me", headers=owner)).status_code == 200
    await login(client, "taken@example.com")
    tried = await client.post(
        "/auth/jwt/login", data={"username": "taken@example.com", "password": OTHER_PASSWORD}
    )
    assert tried.status_code == 400


async def test_a_refused_password_mails_nobody(client, app, smtp_server):
    await register(client, "weakly@example.com")
    r = await client.post("/auth/register", json={"email": "weakly@example.com", "password": "1"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_password"
    await drain_mail(app)
    assert smtp_server.messages == []
