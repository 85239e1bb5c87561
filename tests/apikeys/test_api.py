"""Personal API keys: the routes, where a key works and where it does not, what ends it."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, login, register

NEW_PASSWORD = "seventeen quiet harbour lamps"


async def _new_key(client, headers, name: str = "my script") -> dict:
    r = await client.post("/api/keys", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_key_is_shown_once_and_works_as_a_bearer_token_on_the_api(client, sessionmaker):
    me = await register(client, "keys@example.com")
    made = await _new_key(client, me, "  notebook  ")
    assert set(made) == {"id", "name", "key", "prefix", "createdAt"}
    assert made["name"] == "notebook"
    assert made["key"].startswith("ck_")
    assert made["key"].startswith(made["prefix"]) and len(made["prefix"]) < len(made["key"])

    # The key signs in as its owner, on the user's own routes.
    as_key = _bearer(made["key"])
    r = await client.get("/users/me", headers=as_key)
    assert r.status_code == 200 and r.json()["email"] == "keys@example.com"
    assert (await client.get("/api/sessions", headers=as_key)).status_code == 200

    # The list: no secret, and last use recorded.
    r = await client.get("/api/keys", headers=me)
    assert r.status_code == 200
    assert made["key"] not in r.text
    (row,) = r.json()["keys"]
    assert set(row) == {"id", "name", "prefix", "createdAt", "lastUsedAt"}
    assert row["id"] == made["id"] and row["prefix"] == made["prefix"]
    assert row["lastUsedAt"] is not None

    # The database holds neither the key nor any part of it beyond the shown prefix.
    async with sessionmaker() as session:
        dumped = (await session.execute(text("SELECT api_key::text FROM api_key"))).scalar_one()
    assert made["key"] not in dumped
    assert made["key"][len(made["prefix"]) :] not in dumped


async def test_revoked_or_unknown_keys_are_401_and_another_users_key_is_404(client):
    me = await register(client)
    other = await register(client)
    mine = await _new_key(client, me)
    theirs = await _new_key(client, other)

    r = await client.delete(f"/api/keys/{theirs['id']}", headers=me)
    assert r.status_code == 404 and r.json()["code"] == "api_key_not_found"
    r = await client.delete(f"/api/keys/{uuid.uuid4()}", headers=me)
    assert r.status_code == 404 and r.json()["code"] == "api_key_not_found"
    assert (await client.get("/users/me", headers=_bearer(theirs["key"]))).status_code == 200
    assert [k["id"] for k in (await client.get("/api/keys", headers=me)).json()["keys"]] == [
        mine["id"]
    ]

    assert (await client.delete(f"/api/keys/{mine['id']}", headers=me)).status_code == 204
    assert (await client.get("/users/me", headers=_bearer(mine["key"]))).status_code == 401
    assert (await client.get("/api/sessions", headers=_bearer(mine["key"]))).status_code == 401
    assert (await client.delete(f"/api/keys/{mine['id']}", headers=me)).status_code == 404
    assert (await client.get("/api/keys", headers=me)).json()["keys"] == []

    # A made-up key, a key with one character changed, an over-long one: all 401.
    changed = mine["key"][:-1] + ("A" if mine["key"][-1] != "A" else "B")
    for key in ("ck_nope", changed, theirs["key"] + "x", "ck_" + "a" * 5000):
        assert (await client.get("/users/me", headers=_bearer(key))).status_code == 401


async def test_a_key_cannot_reach_the_credential_routes(client):
    me = await register(client, "careful@example.com")
    key = (await _new_key(client, me))["key"]
    as_key = _bearer(key)
    refused = [
        ("PATCH", "/users/me", {"password": NEW_PASSWORD, "currentPassword": TEST_PASSWORD}),
        ("PATCH", "/users/me", {"email": "new@example.com", "currentPassword": TEST_PASSWORD}),
        ("DELETE", "/users/me", {"currentPassword": TEST_PASSWORD}),
        ("POST", "/api/keys", {"name": "another"}),
        ("GET", "/api/keys", None),
        ("POST", "/api/me/sign-ins/end-others", {}),
    ]
    for method, path, body in refused:
        r = await client.request(method, path, json=body, headers=as_key)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["code"] == "session_required"
    listed = (await client.get("/api/keys", headers=me)).json()["keys"]
    r = await client.delete(f"/api/keys/{listed[0]['id']}", headers=as_key)
    assert r.status_code == 403
    # Nothing changed: same email, same password, one key, the key still works.
    assert (await client.get("/users/me", headers=as_key)).json()["email"] == "careful@example.com"
    await login(client, "careful@example.com")
    assert len((await client.get("/api/keys", headers=me)).json()["keys"]) == 1


async def test_keys_survive_a_password_change_but_not_sign_out_everywhere(client):
    email = "rotate@example.com"
    me = await register(client, email)
    elsewhere = await login(client, email)
    key = (await _new_key(client, me))["key"]

    r = await client.patch(
        "/users/me", json={"password": NEW_PASSWORD, "currentPassword": TEST_PASSWORD}, headers=me
    )
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=elsewhere)).status_code == 401
    assert (await client.get("/users/me", headers=_bearer(key))).status_code == 200

    second = (await _new_key(client, me, "second"))["key"]
    r = await client.post("/api/me/sign-ins/end-others", headers=me)
    assert r.status_code == 200
    assert r.json() == {"ended": 0, "keysEnded": 2}
    for k in (key, second):
        assert (await client.get("/users/me", headers=_bearer(k))).status_code == 401
    assert (await client.get("/api/keys", headers=me)).json()["keys"] == []
    assert (await client.get("/users/me", headers=me)).status_code == 200


async def test_deleting_the_account_ends_its_keys(client, sessionmaker):
    me = await register(client)
    key = (await _new_key(client, me))["key"]
    r = await client.request(
        "DELETE", "/users/me", json={"currentPassword": TEST_PASSWORD}, headers=me
    )
    assert r.status_code == 204
    assert (await client.get("/users/me", headers=_bearer(key))).status_code == 401
    async with sessionmaker() as session:
        assert (await session.execute(text("SELECT count(*) FROM api_key"))).scalar_one() == 0


async def test_names_are_checked_and_keys_are_counted(client, settings):
    me = await register(client)
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": 3}):
        r = await client.post("/api/keys", json=body, headers=me)
        assert r.status_code == 422, (body, r.text)
    settings.api_keys_max_per_user = 2
    await _new_key(client, me, "one")
    await _new_key(client, me, "two")
    r = await client.post("/api/keys", json={"name": "three"}, headers=me)
    assert r.status_code == 409 and r.json()["code"] == "too_many_api_keys"


async def test_signing_out_with_a_key_revokes_it(client):
    me = await register(client)
    key = (await _new_key(client, me))["key"]
    assert (await client.post("/auth/jwt/logout", headers=_bearer(key))).status_code == 204
    assert (await client.get("/users/me", headers=_bearer(key))).status_code == 401
    assert (await client.get("/api/keys", headers=me)).json()["keys"] == []


async def test_requests_at_once_cannot_pass_the_most_keys(client, settings):
    me = await register(client)
    settings.api_keys_max_per_user = 2
    answers = await asyncio.gather(
        *(client.post("/api/keys", json={"name": f"k{i}"}, headers=me) for i in range(6))
    )
    assert sorted(r.status_code for r in answers) == [201, 201, 409, 409, 409, 409]
    assert len((await client.get("/api/keys", headers=me)).json()["keys"]) == 2
