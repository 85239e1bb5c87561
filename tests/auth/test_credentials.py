"""The password policy, changing credentials, and what protects them."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import TEST_PASSWORD, login, register

NEW_PASSWORD = "purple elephants juggle quietly"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "too common"),
        ("12345678", "too common"),
        ("qwertyuiop", "too common"),
        ("short", "at least 8 characters"),
        ("alice.smith rocks the house", "email address"),
    ],
)
async def test_weak_passwords_are_refused_with_a_reason(client, password, why):
    r = await client.post(
        "/auth/register", json={"email": "alice.smith@example.com", "password": password}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_password"  # a plain name
    assert why in r.json()["detail"]


@pytest.mark.parametrize(
    "password",
    [
        TEST_PASSWORD,  # lower case and spaces only: no composition rules
        "unusual lanterns drift over the harbour at dusk while gulls argue about chips",
        "ẞtraße-Ünïcødé-パスワード-🙂-zwölf",
    ],
)
async def test_strong_passwords_of_any_shape_and_length_are_accepted(client, password):
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    r = await client.post("/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = await client.post("/auth/jwt/login", data={"username": email, "password": password})
    assert r.status_code == 200


async def test_changing_the_password_needs_the_current_one_and_ends_other_sign_ins(client):
    email = "changer@example.com"
    here = await register(client, email)
    elsewhere = await login(client, email)

    missing = await client.patch("/users/me", json={"password": NEW_PASSWORD}, headers=here)
    assert missing.status_code == 400
    assert missing.json()["code"] == "current_password_required"
    wrong = await client.patch(
        "/users/me",
        json={"password": NEW_PASSWORD, "currentPassword": "not my password at all"},
        headers=here,
    )
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "wrong_current_password"
    weak = await client.patch(
        "/users/me", json={"password": "password1", "currentPassword": TEST_PASSWORD}, headers=here
    )
    assert weak.status_code == 400
    assert weak.json()["code"] == "invalid_password"
    # Refused changes changed nothing.
    assert (await client.get("/users/me", headers=elsewhere)).status_code == 200

    ok = await client.patch(
        "/users/me", json={"password": NEW_PASSWORD, "currentPassword": TEST_PASSWORD}, headers=here
    )
    assert ok.status_code == 200, ok.text
    assert (await client.get("/users/me", headers=here)).status_code == 200  # this one stays
    assert (await client.get("/users/me", headers=elsewhere)).status_code == 401
    r = await client.post("/auth/jwt/login", data={"username": email, "password": NEW_PASSWORD})
    assert r.status_code == 200


async def test_changing_the_email_needs_the_current_password(client):
    here = await register(client, "old@example.com")
    r = await client.patch("/users/me", json={"email": "new@example.com"}, headers=here)
    assert r.status_code == 400
    r = await client.patch(
        "/users/me",
        json={"email": "new@example.com", "currentPassword": TEST_PASSWORD},
        headers=here,
    )
    assert r.status_code == 200
    assert r.json()["email"] == "new@example.com"
    assert r.json()["isVerified"] is False
    # Flags are not the user's to set, whatever the body says.
    r = await client.patch(
        "/users/me",
        json={"isSuperuser": True, "isActive": None, "isVerified": 0},
        headers=here,
    )
    assert r.status_code == 200
    assert r.json()["isSuperuser"] is False


async def test_a_new_email_ends_every_other_sign_in(client):
    here = await register(client, "moving@example.com")
    elsewhere = await login(client, "moving@example.com")
    r = await client.patch(
        "/users/me",
        json={"email": "moved@example.com", "currentPassword": TEST_PASSWORD},
        headers=here,
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=here)).status_code == 200
    assert (await client.get("/users/me", headers=elsewhere)).status_code == 401


async def test_a_superuser_setting_a_password_ends_every_sign_in_of_that_user(client, sessionmaker):
    admin = await register(client, "incident@example.com")
    async with sessionmaker() as s:
        await s.execute(
            sa.text("UPDATE app_user SET is_superuser = true WHERE email = 'incident@example.com'")
        )
        await s.commit()
    victim = await register(client, "stolen@example.com")
    attacker = await login(client, "stolen@example.com")
    victim_id = (await client.get("/users/me", headers=victim)).json()["id"]
    r = await client.post("/api/keys", json={"name": "planted"}, headers=attacker)
    planted = {"Authorization": f"Bearer {r.json()['key']}"}

    # A change that is no credential leaves the sign-ins alone.
    r = await client.patch(f"/users/{victim_id}", json={"isVerified": True}, headers=admin)
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=attacker)).status_code == 200

    r = await client.patch(f"/users/{victim_id}", json={"password": NEW_PASSWORD}, headers=admin)
    assert r.status_code == 200, r.text
    # Every sign-in of that user ends, and so do the API keys (made by whoever got in).
    for headers in (victim, attacker, planted):
        assert (await client.get("/users/me", headers=headers)).status_code == 401
    assert (await client.get("/users/me", headers=admin)).status_code == 200  # not the admin's
    r = await client.post(
        "/auth/jwt/login", data={"username": "stolen@example.com", "password": NEW_PASSWORD}
    )
    assert r.status_code == 200

    # So does a superuser changing the email.
    again = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await client.patch(
        f"/users/{victim_id}", json={"email": "recovered@example.com"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=again)).status_code == 401


async def test_password_hashing_runs_off_the_event_loop(client, monkeypatch):
    from fastapi_users.password import PasswordHelper

    threads: list[str] = []
    real_hash = PasswordHelper.hash
    real_verify = PasswordHelper.verify_and_update

    def hash_(self, password):
        threads.append(threading.current_thread().name)
        return real_hash(self, password)

    def verify(self, plain, hashed):
        threads.append(threading.current_thread().name)
        return real_verify(self, plain, hashed)

    monkeypatch.setattr(PasswordHelper, "hash", hash_)
    monkeypatch.setattr(PasswordHelper, "verify_and_update", verify)
    await register(client, "threads@example.com")
    await client.post(
        "/auth/jwt/login", data={"username": "nobody@example.com", "password": "whatever it is"}
    )
    assert len(threads) >= 3  # register, sign in, the unknown user's dummy hash
    assert all(name.startswith("password") for name in threads), threads


async def test_cookie_requests_are_csrf_checked_even_with_a_junk_authorization_header(client):
    await client.get("/healthz")
    await client.post(
        "/auth/register", json={"email": "web@example.com", "password": TEST_PASSWORD}
    )
    r = await client.post(
        "/auth/cookie/login", data={"username": "web@example.com", "password": TEST_PASSWORD}
    )
    assert r.status_code == 204
    body = {"messages": [{"role": "user", "content": "hi"}]}
    for junk in ("Bearer junk", "Basic Zm9vOmJhcg==", "nonsense"):
        r = await client.post("/api/chat", json=body, headers={"Authorization": junk})
        assert r.status_code == 403, junk
        assert r.json()["code"] == "csrf_failed"
    token = client.cookies["chatkeep_csrf"]
    r = await client.post("/api/chat", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 200


class TestLimits:
    @pytest.fixture
    def settings(self, settings):
        settings.rate_limit_enabled = True
        settings.rate_limit_storage_url = "memory://"
        settings.rate_limit_key_prefix = f"t-{uuid.uuid4().hex}"
        settings.rate_limit_credentials = "3/minute"
        settings.rate_limit_auth = "4/minute"
        return settings

    async def test_credential_changes_have_their_own_limit(self, client):
        headers = await register(client, "limited@example.com")
        codes = []
        for _ in range(4):
            r = await client.patch(
                "/users/me",
                json={"password": NEW_PASSWORD, "currentPassword": "a wrong guess here"},
                headers=headers,
            )
            codes.append(r.status_code)
        assert codes == [400, 400, 400, 429]
        assert r.json()["policy"] == "credentials"
        # Deleting the account is a credential action too.
        r = await client.request(
            "DELETE", "/users/me", json={"currentPassword": TEST_PASSWORD}, headers=headers
        )
        assert r.status_code == 429

    async def test_every_users_route_carries_a_rate_limit(self, client):
        headers = await register(client, "someone@example.com")
        me = await client.get("/users/me", headers=headers)
        other = await client.get(f"/users/{uuid.uuid4()}", headers=headers)  # superusers only
        assert other.status_code == 403
        for response in (me, other):
            assert '"default-minute"' in response.headers["RateLimit-Policy"]
        r = await client.patch("/users/me", json={"password": NEW_PASSWORD}, headers=headers)
        assert '"credentials-minute"' in r.headers["RateLimit-Policy"]

    async def test_every_spelling_of_an_address_shares_one_sign_in_budget(self, app, client):
        await client.post(
            "/auth/register", json={"email": "alice@example.com", "password": TEST_PASSWORD}
        )  # one attempt of this address
        spellings = ["ALICE@example.com", "Alice@Example.com", "alİce@example.com"]
        codes = []
        for n, spelling in enumerate(spellings):
            transport = httpx.ASGITransport(app=app, client=(f"10.9.0.{n + 1}", 4000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                r = await c.post(
                    "/auth/jwt/login", data={"username": spelling, "password": "wrong guess 1"}
                )
                codes.append(r.status_code)
        assert codes == [400, 400, 400]
        transport = httpx.ASGITransport(app=app, client=("10.9.0.99", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.post(
                "/auth/jwt/login", data={"username": "alice@example.com", "password": TEST_PASSWORD}
            )
        assert r.status_code == 429
