"""The admin usage view: every user's conversations, messages, tokens by model and last
activity, a page at a time."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.core.config import Settings
from tests.conftest import chat, register
from tests.usage.conftest import make_superuser

pytestmark = pytest.mark.storage


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"quota_tokens_per_day": 0})


async def _all_pages(client, headers, limit):
    pages, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        r = await client.get("/api/admin/usage", params=params, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r.json()["items"])
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return pages


async def test_usage_per_user_by_model_with_keyset_pages(client, clock, sessionmaker, metered):
    admin = await register(client, "root@example.com")
    await make_superuser(sessionmaker, "root@example.com")
    alice = await register(client, "alice@example.com")
    bob = await register(client, "bob@example.com")
    await register(client, "carol@example.com")  # never chatted

    sid = (await chat(client, alice, "one")).json()["sessionId"]
    await chat(client, alice, "two", session_id=sid)
    metered.model = "big-model"
    metered.prompt, metered.completion = 1000, 500
    clock.advance(60)
    await chat(client, alice, "three")  # a second conversation, another model
    await chat(client, bob, "hello")

    pages = await _all_pages(client, admin, limit=3)
    assert [len(p) for p in pages] == [3, 1]
    rows = [row for page in pages for row in page]
    assert [r["email"] for r in rows] == [
        "root@example.com",
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    ]
    by_email = {r["email"]: r for r in rows}

    a = by_email["alice@example.com"]
    assert (a["conversations"], a["messages"]) == (2, 6)
    assert a["models"] == [
        {
            "model": "big-model",
            "turns": 1,
            "promptTokens": 1000,
            "completionTokens": 500,
            "totalTokens": 1500,
            "tokensToday": 1500,
            "tokensThisMonth": 1500,
        },
        {
            "model": "test-model",
            "turns": 2,
            "promptTokens": 120,
            "completionTokens": 80,
            "totalTokens": 200,
            "tokensToday": 200,
            "tokensThisMonth": 200,
        },
    ]
    assert (a["totalTokens"], a["tokensToday"], a["tokensThisMonth"]) == (1700, 1700, 1700)
    assert datetime.fromisoformat(a["lastActiveAt"]) == clock.now()
    assert a["budget"] == {"tokensPerDay": None, "tokensPerMonth": None}

    b = by_email["bob@example.com"]
    assert (b["conversations"], b["messages"], b["totalTokens"]) == (1, 2, 1500)
    c = by_email["carol@example.com"]
    assert (c["conversations"], c["messages"], c["models"], c["lastActiveAt"]) == (0, 0, [], None)

    # An administrator's figure shows in the view.
    await client.put(
        f"/api/admin/users/{b['userId']}/budget", json={"tokensPerDay": 10}, headers=admin
    )
    pages = await _all_pages(client, admin, limit=1)
    assert [len(p) for p in pages] == [1, 1, 1, 1]
    bob_row = next(r for p in pages for r in p if r["email"] == "bob@example.com")
    assert bob_row["budget"] == {"tokensPerDay": 10, "tokensPerMonth": None}


async def test_the_usage_view_is_for_administrators_only(client):
    me = await register(client)
    r = await client.get("/api/admin/usage", headers=me)
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/admin/usage")).status_code == 401


async def test_a_cursor_the_view_did_not_give_is_refused(client, sessionmaker):
    admin = await register(client, "root@example.com")
    await make_superuser(sessionmaker, "root@example.com")
    for cursor in ("nonsense", "bm90fGF8dXVpZA"):
        r = await client.get("/api/admin/usage", params={"cursor": cursor}, headers=admin)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_cursor"
