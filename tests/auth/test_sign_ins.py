"""Sign-ins as rows: the list, ending them, and how long each kind lasts (injected clock)."""

from __future__ import annotations

import uuid

from tests.conftest import TEST_PASSWORD, login, register

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DAY = 86_400


async def _cookie_sign_in(client, email: str, agent: str = FIREFOX) -> None:
    r = await client.post(
        "/auth/cookie/login",
        data={"username": email, "password": TEST_PASSWORD},
        headers={"User-Agent": agent},
    )
    assert r.status_code == 204, r.text


def _max_age(response) -> int | None:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith("chatkeep_auth="):
            part = next(p for p in value.split(";") if p.strip().lower().startswith("max-age="))
            return int(part.split("=", 1)[1])
    return None


async def test_sign_ins_are_listed_with_device_and_the_current_one_marked(client):
    email = "lister@example.com"
    await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    r = await client.post(
        "/auth/jwt/login",
        data={"username": email, "password": TEST_PASSWORD},
        headers={"User-Agent": IPHONE},
    )
    phone = {"Authorization": f"Bearer {r.json()['access_token']}"}
    await _cookie_sign_in(client, email)

    r = await client.get("/api/me/sign-ins")  # as the browser (cookie)
    assert r.status_code == 200
    rows = r.json()["signIns"]
    assert len(rows) == 2
    by_kind = {row["kind"]: row for row in rows}
    assert by_kind["cookie"]["device"] == "Firefox 128 on Windows"
    assert by_kind["cookie"]["current"] is True
    assert by_kind["bearer"]["device"] == "iPhone · Mobile Safari 17 on iOS"
    assert by_kind["bearer"]["current"] is False
    assert by_kind["cookie"]["ip"] == "127.0.0.1"
    assert set(by_kind["cookie"]) >= {"createdAt", "lastUsedAt", "expiresAt"}

    # End the phone from the browser; the phone's token is dead at once.
    csrf = {"X-CSRF-Token": client.cookies["chatkeep_csrf"]}
    r = await client.delete(f"/api/me/sign-ins/{by_kind['bearer']['id']}", headers=csrf)
    assert r.status_code == 204
    client_cookies = dict(client.cookies)
    client.cookies.clear()
    assert (await client.get("/users/me", headers=phone)).status_code == 401
    client.cookies.update(client_cookies)
    assert (await client.get("/users/me")).status_code == 200


async def test_end_others_keeps_only_this_sign_in_and_others_are_404(client):
    email = "many@example.com"
    here = await register(client, email)
    others = [await login(client, email) for _ in range(3)]
    r = await client.post("/api/me/sign-ins/end-others", headers=here)
    assert r.status_code == 200
    assert r.json() == {"ended": 3, "keysEnded": 0}
    for headers in others:
        assert (await client.get("/users/me", headers=headers)).status_code == 401
    rows = (await client.get("/api/me/sign-ins", headers=here)).json()["signIns"]
    assert [row["current"] for row in rows] == [True]

    # Someone else's sign-in, or one that does not exist: the same 404.
    stranger = await register(client)
    mine = rows[0]["id"]
    for target in (mine, str(uuid.uuid4())):
        r = await client.delete(f"/api/me/sign-ins/{target}", headers=stranger)
        assert r.status_code == 404
        assert r.json()["code"] == "sign_in_not_found"
    assert (await client.get("/users/me", headers=here)).status_code == 200


async def test_the_web_cookie_slides_while_used_up_to_the_absolute_limit(client, clock, settings):
    email = "active@example.com"
    await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    await _cookie_sign_in(client, email)
    # Used every six days: each use renews the cookie for another idle period...
    for day in range(6, 30, 6):
        clock.advance(6 * DAY)
        r = await client.get("/users/me")
        assert r.status_code == 200, f"signed out on day {day}"
        max_age = _max_age(r)
        assert max_age is not None
        assert max_age == min(settings.sign_in_idle_days * DAY, (30 - day) * DAY)
    # ...until SIGN_IN_MAX_DAYS after signing in, however active.
    clock.advance(6 * DAY + 1)
    assert (await client.get("/users/me")).status_code == 401


async def test_an_idle_web_cookie_ends_after_the_idle_limit(client, clock):
    email = "idle@example.com"
    await client.post("/auth/register", json={"email": email, "password": TEST_PASSWORD})
    await _cookie_sign_in(client, email)
    clock.advance(6 * DAY)
    r = await client.get("/users/me")
    assert r.status_code == 200
    clock.advance(7 * DAY + 1)
    assert (await client.get("/users/me")).status_code == 401


async def test_bearer_tokens_keep_a_fixed_lifetime(client, clock, settings):
    headers = await register(client)
    client.cookies.clear()
    for _ in range(3):
        clock.advance(settings.access_token_ttl_seconds // 4)
        assert (await client.get("/users/me", headers=headers)).status_code == 200
    clock.advance(settings.access_token_ttl_seconds // 4 + 1)
    assert (await client.get("/users/me", headers=headers)).status_code == 401
