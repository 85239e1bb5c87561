"""Sign-in: bearer tokens for API clients, a cookie with CSRF protection for the web page."""

from __future__ import annotations

import os
import stat
import time

import jwt
import pytest
from pydantic import ValidationError

from app.core.config import Settings
from tests.conftest import (
    TEST_PASSWORD,
    chat,
    login,
    login_over_http,
    register,
    register_over_http,
)


async def test_register_and_login_are_case_insensitive_on_email(client):
    r = await client.post(
        "/auth/register", json={"email": "Mixed.Case@Example.com", "password": TEST_PASSWORD}
    )
    assert r.status_code == 201
    assert r.json()["email"].lower() == "mixed.case@example.com"
    assert set(r.json()) >= {"id", "email", "isActive", "isSuperuser", "isVerified"}
    headers = await login(client, "mixed.case@example.COM")
    me = await client.get("/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["id"] == r.json()["id"]
    dup = await client.post(
        "/auth/register", json={"email": "MIXED.case@example.com", "password": TEST_PASSWORD}
    )
    assert dup.status_code == 400
    assert dup.json()["code"] == "register_user_already_exists"
    assert dup.headers["content-type"].startswith("application/problem+json")


async def test_weak_passwords_and_bad_credentials_are_explained(client):
    r = await client.post("/auth/register", json={"email": "a@example.com", "password": "short"})
    assert r.status_code == 400
    assert "at least 8" in r.json()["detail"]
    await register(client, "b@example.com")
    bad = await client.post(
        "/auth/jwt/login", data={"username": "b@example.com", "password": "wrong password"}
    )
    assert bad.status_code == 400
    assert bad.json()["detail"] == "Wrong email or password."


async def test_passwords_are_hashed_with_argon2(client, sessionmaker):
    import sqlalchemy as sa

    await register_over_http(client, "hash@example.com")
    async with sessionmaker() as s:
        hashed = (await s.execute(sa.text("SELECT hashed_password FROM app_user"))).scalar_one()
    assert hashed.startswith("$argon2")
    assert TEST_PASSWORD not in hashed


async def test_token_lifetime_is_configurable(client, settings, clock):
    settings.access_token_ttl_seconds = 60
    await register(client, "ttl@example.com")
    before = int(time.time())
    headers = await login_over_http(client, "ttl@example.com")
    after = int(time.time())
    # The token's own expiry, in real time: issued then plus the lifetime.
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    assert before + 60 <= claims["exp"] <= after + 60
    # Its sign-in row expires on the app's clock.
    assert (await client.get("/users/me", headers=headers)).status_code == 200
    clock.advance(59)
    assert (await client.get("/users/me", headers=headers)).status_code == 200
    clock.advance(2)
    assert (await client.get("/users/me", headers=headers)).status_code == 401


async def _cookie_login(client, email: str) -> str:
    r = await client.post("/auth/cookie/login", data={"username": email, "password": TEST_PASSWORD})
    assert r.status_code == 204, r.text
    assert "chatkeep_auth" in client.cookies
    set_cookie = r.headers.get_list("set-cookie")
    assert any("chatkeep_auth=" in c and "HttpOnly" in c for c in set_cookie)
    return client.cookies["chatkeep_csrf"]


async def test_cookie_requests_that_change_state_need_the_csrf_token(client):
    await client.get("/healthz")  # any response hands out the CSRF cookie
    assert "chatkeep_csrf" in client.cookies
    await client.post(
        "/auth/register", json={"email": "web@example.com", "password": TEST_PASSWORD}
    )
    token = await _cookie_login(client, "web@example.com")
    body = {"messages": [{"role": "user", "content": "hi from the browser"}]}

    assert (await client.get("/users/me")).status_code == 200  # reads need no token
    refused = await client.post("/api/chat", json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    wrong = await client.post("/api/chat", json=body, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    cross_site = await client.post(
        "/api/chat", json=body, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    ok = await client.post(
        "/api/chat", json=body, headers={"X-CSRF-Token": token, "Origin": "http://testserver"}
    )
    assert ok.status_code == 200

    stolen = client.cookies["chatkeep_auth"]
    logout = await client.post("/auth/cookie/logout", headers={"X-CSRF-Token": token})
    assert logout.status_code == 204
    assert "chatkeep_auth" not in client.cookies
    assert (await client.get("/users/me")).status_code == 401
    # The signed-out cookie value is dead even if someone kept a copy.
    client.cookies.set("chatkeep_auth", stolen)
    assert (await client.get("/users/me")).status_code == 401


async def test_bearer_clients_need_no_csrf_token(client):
    headers = await register(client)
    client.cookies.clear()
    assert (await chat(client, headers, "hello")).status_code == 200


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", secret_key=None)
    first = settings.resolved_secret_key()
    again = Settings(data_dir=tmp_path / "d", secret_key=None).resolved_secret_key()
    assert first == again
    assert len(first) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "d" / "secret_key").st_mode)
    assert mode == 0o600


@pytest.mark.parametrize("key", [None, "", "changeme", "short-key"])
def test_production_refuses_a_weak_secret(key):
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(app_env="production", secret_key=key)


def test_production_accepts_a_strong_secret():
    assert Settings(app_env="production", secret_key="k" * 48).app_env == "production"


async def test_logout_revokes_the_token_but_not_other_logins(client):
    await client.post(
        "/auth/register", json={"email": "two@example.com", "password": TEST_PASSWORD}
    )
    phone = await login(client, "two@example.com")
    laptop = await login(client, "two@example.com")
    assert phone != laptop
    assert (await client.post("/auth/jwt/logout", headers=phone)).status_code == 204
    assert (await client.get("/users/me", headers=phone)).status_code == 401
    assert (await client.get("/users/me", headers=laptop)).status_code == 200
