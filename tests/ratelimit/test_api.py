"""Per-user limits over HTTP, counted in the real Redis."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from app.core.config import Settings
from tests.ratelimit.conftest import TEST_PASSWORD, chat_body, client_from, new_user, sign_in

pytestmark = [pytest.mark.redis, pytest.mark.storage]

ITEM = re.compile(r'^"(?P<name>[a-z0-9-]+)"((?:;[a-z]+=\d+)+)$')


def parse_list(value: str) -> dict[str, dict[str, int]]:
    """A structured-field list of string items with integer parameters."""
    out: dict[str, dict[str, int]] = {}
    for item in value.split(", "):
        m = ITEM.match(item)
        assert m, f"not a RateLimit list item: {item!r}"
        params = dict(p.split("=") for p in m.group(2).strip(";").split(";"))
        out[m.group("name")] = {k: int(v) for k, v in params.items()}
    return out


async def message_count(sessionmaker) -> int:
    async with sessionmaker() as s:
        return int((await s.execute(sa.text("SELECT count(*) FROM chat_message"))).scalar_one())


async def session_count(sessionmaker) -> int:
    async with sessionmaker() as s:
        return int((await s.execute(sa.text("SELECT count(*) FROM chat_session"))).scalar_one())


async def test_chat_carries_headers_and_turns_away_the_request_over_the_limit(
    app, client, sessionmaker
):
    _, user = await new_user(app)
    remaining = []
    sid = None
    for i in range(3):
        r = await client.post("/api/chat", json=chat_body(f"hello {i}", sid), headers=user)
        assert r.status_code == 200, r.text
        sid = r.json()["sessionId"]
        policy = parse_list(r.headers["RateLimit-Policy"])
        assert policy == {"chat-minute": {"q": 3, "w": 60}, "chat-day": {"q": 5, "w": 86400}}
        state = parse_list(r.headers["RateLimit"])
        assert set(state) == {"chat-minute", "chat-day"}
        assert 0 < state["chat-minute"]["t"] <= 60
        assert 0 < state["chat-day"]["t"] <= 86400
        remaining.append((state["chat-minute"]["r"], state["chat-day"]["r"]))
    assert remaining == [(2, 4), (1, 3), (0, 2)]

    messages_before = await message_count(sessionmaker)
    detail_before = (await client.get(f"/api/sessions/{sid}", headers=user)).json()

    # Over the limit, in an existing session and in a new one.
    for body in (chat_body("one more", sid), chat_body("a new session")):
        r = await client.post("/api/chat", json=body, headers=user)
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["code"] == "rate_limited"
        assert problem["status"] == 429
        assert problem["policy"] == "chat"
        assert problem["limit"] == "3/minute"
        retry_after = int(r.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert problem["retryAfter"] == retry_after
        assert parse_list(r.headers["RateLimit"])["chat-minute"]["r"] == 0
        assert "RateLimit-Policy" in r.headers

    # Nothing of the rejected turns was stored or touched.
    assert await message_count(sessionmaker) == messages_before == 6
    assert await session_count(sessionmaker) == 1
    detail_after = (await client.get(f"/api/sessions/{sid}", headers=user)).json()
    assert detail_after["messageCount"] == detail_before["messageCount"] == 6
    assert detail_after["lastActivityAt"] == detail_before["lastActivityAt"]


async def test_users_have_their_own_limits_even_from_one_address(app):
    _, alice = await new_user(app)
    _, bob = await new_user(app)
    async with client_from(app, "192.0.2.10") as office:
        for _ in range(3):
            assert (
                await office.post("/api/chat", json=chat_body("hi"), headers=alice)
            ).status_code == 200
        assert (
            await office.post("/api/chat", json=chat_body("hi"), headers=alice)
        ).status_code == 429
        # Bob, behind the same office address, is untouched.
        r = await office.post("/api/chat", json=chat_body("hi"), headers=bob)
        assert r.status_code == 200
        assert parse_list(r.headers["RateLimit"])["chat-minute"]["r"] == 2


async def test_one_users_tokens_share_one_limit(app):
    email, laptop = await new_user(app)
    phone = await sign_in(app, email)
    assert phone != laptop
    async with client_from(app) as c1, client_from(app) as c2:
        codes = [
            (await c.post("/api/chat", json=chat_body("hi"), headers=h)).status_code
            for c, h in [(c1, laptop), (c2, phone), (c1, laptop), (c2, phone)]
        ]
    assert codes == [200, 200, 200, 429]


async def test_other_api_routes_count_against_default_not_chat(app, client):
    _, user = await new_user(app)
    r = await client.post("/api/chat", json=chat_body("hi"), headers=user)
    sid = r.json()["sessionId"]
    assert set(parse_list(r.headers["RateLimit"])) == {"chat-minute", "chat-day"}

    seen = []
    for _ in range(6):
        r = await client.get(f"/api/sessions/{sid}", headers=user)
        assert r.status_code == 200
        state = parse_list(r.headers["RateLimit"])
        assert set(state) == {"default-minute"}
        seen.append(state["default-minute"]["r"])
    assert seen == [5, 4, 3, 2, 1, 0]
    r = await client.get(f"/api/sessions/{sid}", headers=user)
    assert r.status_code == 429
    assert r.json()["policy"] == "default"
    assert r.json()["limit"] == "6/minute"
    # Chat has its own count and still has room.
    assert (
        await client.post("/api/chat", json=chat_body("hi", sid), headers=user)
    ).status_code == 200


async def test_history_and_assistant_routes_count_under_default(app, client):
    _, user = await new_user(app)
    seen = []
    for path in ("/api/sessions", "/api/posts", "/api/sessions"):
        r = await client.get(path, headers=user)
        assert r.status_code == 200, r.text
        seen.append(parse_list(r.headers["RateLimit"])["default-minute"]["r"])
    assert seen == [5, 4, 3]


async def test_me_limits_shows_every_policy_and_counts_nothing(app, client):
    _, user = await new_user(app)
    for _ in range(2):
        assert (
            await client.post("/api/chat", json=chat_body("hi"), headers=user)
        ).status_code == 200

    first = await client.get("/api/me/limits", headers=user)
    assert first.status_code == 200
    assert "RateLimit" not in first.headers
    second = (await client.get("/api/me/limits", headers=user)).json()

    def remaining(body):
        return [(p["name"], p["window"], p["remaining"]) for p in body["policies"]]

    assert remaining(first.json()) == remaining(second)
    assert second["enabled"] is True
    by_window = {(p["name"], p["window"]): p for p in second["policies"]}
    assert set(by_window) == {
        ("chat", "minute"),
        ("chat", "day"),
        ("export", "minute"),
        ("import", "hour"),
        ("credentials", "minute"),
        ("auth", "minute"),
        ("default", "minute"),
        ("shared", "minute"),
        ("mail", "day"),
    }
    chat_minute = by_window[("chat", "minute")]
    assert chat_minute["limit"] == "3/minute"
    assert chat_minute["remaining"] == 1
    assert chat_minute["windowSeconds"] == 60
    assert chat_minute["overridden"] is False
    assert chat_minute["key"] == "user"
    assert by_window[("chat", "day")]["remaining"] == 3
    assert by_window[("export", "minute")]["remaining"] == 2
    assert by_window[("default", "minute")]["remaining"] == 6
    reset_at = datetime.fromisoformat(chat_minute["resetAt"])
    assert 0 < (reset_at - datetime.now(UTC)).total_seconds() <= 60
    assert by_window[("auth", "minute")]["key"] == "ip+email"
    # Sign-up and sign-in used two of the four auth attempts of this email.
    assert by_window[("auth", "minute")]["remaining"] == 2

    assert (await client.get("/api/me/limits")).status_code == 401


async def test_superuser_override_applies_and_keeps_the_count(app, client, admin, user_id_of):
    _, user = await new_user(app)
    uid = await user_id_of(client, user)
    url = f"/api/admin/users/{uid}/limits"

    got = (await client.get(url, headers=admin)).json()
    assert got["overrides"] == {
        "chat": None,
        "export": None,
        "import": None,
        "credentials": None,
        "default": None,
    }
    assert got["configured"]["chat"] == "3/minute;5/day"

    for _ in range(3):
        assert (
            await client.post("/api/chat", json=chat_body("hi"), headers=user)
        ).status_code == 200
    assert (await client.post("/api/chat", json=chat_body("hi"), headers=user)).status_code == 429

    r = await client.put(url, json={"chat": "5/minute;100/day", "export": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["overrides"]["chat"] == "5/minute;100/day"
    assert r.json()["overrides"]["export"] is None

    # The three already used still count: two more, then the new limit.
    codes = [
        (await client.post("/api/chat", json=chat_body("hi"), headers=user)).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    r = await client.post("/api/chat", json=chat_body("hi"), headers=user)
    assert r.json()["limit"] == "5/minute"
    assert parse_list(r.headers["RateLimit-Policy"])["chat-minute"]["q"] == 5

    mine = (await client.get("/api/me/limits", headers=user)).json()["policies"]
    chat_minute = next(p for p in mine if p["name"] == "chat" and p["window"] == "minute")
    assert chat_minute["limit"] == "5/minute"
    assert chat_minute["overridden"] is True
    assert chat_minute["remaining"] == 0

    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).json()["overrides"]["chat"] is None
    r = await client.post("/api/chat", json=chat_body("hi"), headers=user)
    assert r.status_code == 429
    assert r.json()["limit"] == "3/minute"


async def test_override_routes_check_who_and_what(app, client, admin, user_id_of):
    _, user = await new_user(app)
    uid = await user_id_of(client, user)
    url = f"/api/admin/users/{uid}/limits"

    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(method, url, json={"chat": "1/minute"}, headers=user)
        assert r.status_code == 403, method

    missing = "/api/admin/users/00000000-0000-4000-8000-000000000000/limits"
    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(method, missing, json={}, headers=admin)
        assert r.status_code == 404, method
        assert r.json()["code"] == "user_not_found"

    r = await client.put(url, json={"chat": "20/minit"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_rate_limit"
    assert "20/minit" in r.json()["detail"]
    r = await client.put(url, json={"auth": "100/minute"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_policy"
    # Nothing was stored by the rejected writes.
    assert (await client.get(url, headers=admin)).json()["overrides"]["chat"] is None


async def test_sign_in_is_limited_by_address(app):
    async with client_from(app, "198.51.100.7") as c:
        codes = []
        for i in range(5):
            r = await c.post(
                "/auth/jwt/login",
                data={"username": f"guess{i}@example.com", "password": "wrong-pass"},
            )
            codes.append(r.status_code)
        assert codes == [400, 400, 400, 400, 429]
        assert r.json()["policy"] == "auth"
        assert int(r.headers["Retry-After"]) >= 1
        # Registration from the same address is the same policy.
        r = await c.post(
            "/auth/register", json={"email": "new@example.com", "password": TEST_PASSWORD}
        )
        assert r.status_code == 429
    async with client_from(app, "198.51.100.8") as other:
        r = await other.post(
            "/auth/register", json={"email": "new@example.com", "password": TEST_PASSWORD}
        )
        assert r.status_code == 201


async def test_sign_in_is_limited_by_email_across_addresses(app):
    email, _ = await new_user(app)  # two attempts for this email already
    codes = []
    for _ in range(3):
        async with client_from(app) as c:
            r = await c.post(
                "/auth/jwt/login", data={"username": email.upper(), "password": "wrong-pass"}
            )
            codes.append(r.status_code)
    assert codes == [400, 400, 429]
    # Even the right password waits now, from a fresh address, on either sign-in route.
    async with client_from(app) as c:
        r = await c.post("/auth/cookie/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 429
        # Another account from that address is fine.
        other, _ = await new_user(app)
        r = await c.post("/auth/jwt/login", data={"username": other, "password": TEST_PASSWORD})
        assert r.status_code == 200
        assert "access_token" in r.json()


async def test_sign_out_is_not_counted(app):
    email, headers = await new_user(app)
    async with client_from(app, "203.0.113.5") as c:
        for _ in range(6):
            r = await c.post("/auth/jwt/logout", headers=headers)
            assert r.status_code != 429, r.text
        r = await c.post("/auth/jwt/login", data={"username": email, "password": TEST_PASSWORD})
        assert r.status_code == 200


def test_invalid_policy_strings_stop_the_start():
    with pytest.raises(ValidationError) as err:
        Settings(rate_limit_chat="20/minit")
    assert "RATE_LIMIT_CHAT" in str(err.value)
    assert "20/minit" in str(err.value)
    with pytest.raises(ValidationError) as err:
        Settings(rate_limit_storage_url="mongodb://localhost")
    assert "RATE_LIMIT_STORAGE_URL" in str(err.value)


async def test_exports_and_imports_have_their_own_policies(app, client, sessionmaker):
    _, user = await new_user(app)
    sid = (await client.post("/api/chat", json=chat_body("to export"), headers=user)).json()[
        "sessionId"
    ]
    # Export: 2/minute, shared by the single-conversation and the everything export.
    r = await client.get(f"/api/sessions/{sid}/export", headers=user)
    assert r.status_code == 200
    state = parse_list(r.headers["RateLimit"])
    assert set(state) == {"export-minute"}
    assert state["export-minute"]["r"] == 1
    r = await client.get("/api/export", headers=user)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert parse_list(r.headers["RateLimit"])["export-minute"]["r"] == 0
    r = await client.get("/api/export", headers=user)
    assert r.status_code == 429
    assert r.json()["policy"] == "export"

    # Import: 1/hour, counted only for an import that stored something: refused files
    # cost nothing, the first import that stores uses the hour's one.
    export = (await client.get(f"/api/sessions/{sid}/export", headers=user)).status_code
    assert export == 429
    sessions_before = await session_count(sessionmaker)
    for _ in range(3):
        r = await client.post("/api/import", content=b"not an export", headers=user)
        assert r.status_code == 422
    assert await session_count(sessionmaker) == sessions_before
    r = await client.post("/api/import", content=_one_conversation("kept"), headers=user)
    assert r.status_code == 200 and r.json()["imported"] == 1, r.text
    r = await client.post("/api/import", content=_one_conversation("refused"), headers=user)
    assert r.status_code == 429
    assert r.json()["policy"] == "import"
    assert r.json()["limit"] == "1/hour"
    assert 60 < int(r.headers["Retry-After"]) <= 3600  # the hour window
    assert await session_count(sessionmaker) == sessions_before + 1


def _one_conversation(source_id: str) -> bytes:
    at = "2026-01-01T00:00:00Z"
    return json.dumps(
        {
            "format": "chatkeep.conversation",
            "version": 1,
            "conversation": {
                "id": source_id,
                "title": "Imported",
                "createdAt": at,
                "lastActivityAt": at,
                "messageCount": 1,
                "messages": [{"seq": 1, "role": "user", "content": "hello", "createdAt": at}],
            },
        }
    ).encode()


async def test_a_limited_request_needs_one_pooled_connection(settings, clock, database_url):
    """The limiter reads a user's overrides through the request's own session. With a
    second connection per request, a burst deadlocks a small pool until it times out."""
    import asyncio

    from app.main import create_app
    from tests.conftest import _truncate

    await _truncate(database_url)
    small = settings.model_copy(
        update={"db_pool_size": 2, "db_max_overflow": 0, "db_pool_timeout_seconds": 3.0}
    )
    app = create_app(small, clock=clock, migrate=False, run_sweeper=False)
    async with app.router.lifespan_context(app):
        users = [await new_user(app) for _ in range(6)]
        async with client_from(app) as c:
            answers = await asyncio.gather(
                *(c.post("/api/chat", json=chat_body("hello"), headers=h) for _, h in users)
            )
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
