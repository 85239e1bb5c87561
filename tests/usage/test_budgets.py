"""Token budgets: refused at the edge when a turn opens, with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import chat, register
from tests.usage.conftest import counts, make_superuser

pytestmark = pytest.mark.storage


def _next_midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )


async def test_a_used_up_daily_budget_refuses_the_next_turn_and_stores_nothing(
    client, clock, sessionmaker, metered
):
    me = await register(client)
    sid = None
    for i in range(3):  # 0, 100, 200 tokens used before each: all under 250
        r = await chat(client, me, f"question {i}", session_id=sid)
        assert r.status_code == 200, r.text
        sid = r.json()["sessionId"]
    usage = (await client.get("/api/me/usage", headers=me)).json()
    day, month = usage["budgets"]
    assert (day["period"], day["limit"], day["used"], day["remaining"]) == ("day", 250, 300, 0)
    assert (month["period"], month["limit"], month["remaining"]) == ("month", None, None)
    assert month["used"] == 300
    reset = _next_midnight(clock.now())
    assert datetime.fromisoformat(day["resetAt"]) == reset

    before = await counts(sessionmaker)
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    stream = {**me, "accept": "text/event-stream"}
    for headers, session_id in ((me, sid), (me, None), (stream, sid)):
        r = await chat(client, headers, "one more", session_id=session_id)
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert problem["code"] == "quota_exceeded"
        assert (problem["period"], problem["limit"], problem["used"]) == ("day", 250, 300)
        assert datetime.fromisoformat(problem["resetAt"]) == reset
        retry_after = int(r.headers["Retry-After"])
        assert retry_after == problem["retryAfter"]
        assert retry_after == int((reset - clock.now()).total_seconds() + 0.999)
    # A regenerated reply is a turn too.
    r = await client.post(f"/api/sessions/{sid}/messages/2/regenerate", headers=me)
    assert r.status_code == 429 and r.json()["code"] == "quota_exceeded"

    assert await counts(sessionmaker) == before
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).json() == detail

    # Another user is not held back by this one's budget.
    other = await register(client)
    assert (await chat(client, other, "hello")).status_code == 200

    # The next day (UTC) the budget starts again.
    clock.set(reset)
    r = await chat(client, me, "a new day", session_id=sid)
    assert r.status_code == 200, r.text
    day = (await client.get("/api/me/usage", headers=me)).json()["budgets"][0]
    assert (day["used"], day["remaining"]) == (100, 150)


async def test_an_administrator_sets_one_users_budget(client, clock, sessionmaker, metered):
    admin = await register(client, "root@example.com")
    await make_superuser(sessionmaker, "root@example.com")
    me = await register(client)
    my_id = (await client.get("/users/me", headers=me)).json()["id"]
    path = f"/api/admin/users/{my_id}/budget"

    # Not for users, even about themselves.
    assert (await client.get(path, headers=me)).status_code == 403
    r = await client.put(path, json={"tokensPerDay": 0}, headers=me)
    assert r.status_code == 403

    view = (await client.get(path, headers=admin)).json()
    assert view["tokensPerDay"] is None and view["tokensPerMonth"] is None
    assert view["configured"] == {"tokensPerDay": 250, "tokensPerMonth": 0}

    # A monthly budget of 150 for this user: the second turn passes (100 < 150), the third
    # does not, and the refusal names the month and its reset.
    r = await client.put(path, json={"tokensPerMonth": 150}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["tokensPerMonth"] == 150
    sid = (await chat(client, me, "one")).json()["sessionId"]
    assert (await chat(client, me, "two", session_id=sid)).status_code == 200
    r = await chat(client, me, "three", session_id=sid)
    assert r.status_code == 429
    problem = r.json()
    assert (problem["code"], problem["period"], problem["limit"]) == (
        "quota_exceeded",
        "month",
        150,
    )
    start = clock.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (start + timedelta(days=32)).replace(day=1)
    assert datetime.fromisoformat(problem["resetAt"]) == next_month
    budgets = (await client.get("/api/me/usage", headers=me)).json()["budgets"]
    assert [(b["period"], b["limit"], b["overridden"]) for b in budgets] == [
        ("day", 250, False),
        ("month", 150, True),
    ]

    # 0: unlimited for this user, whatever is configured.
    r = await client.put(path, json={"tokensPerDay": 0, "tokensPerMonth": 0}, headers=admin)
    assert r.status_code == 200
    for word in ("three", "four", "five"):
        assert (await chat(client, me, word, session_id=sid)).status_code == 200
    # Both null: the configured budgets again (500 used today, over 250).
    r = await client.put(path, json={"tokensPerDay": None, "tokensPerMonth": None}, headers=admin)
    assert r.json()["tokensPerDay"] is None
    assert (await chat(client, me, "six", session_id=sid)).status_code == 429

    r = await client.put(path, json={"tokensPerDay": -1}, headers=admin)
    assert r.status_code == 422
    missing = "/api/admin/users/00000000-0000-0000-0000-000000000000/budget"
    assert (await client.get(missing, headers=admin)).status_code == 404


async def test_deleting_conversations_gives_no_tokens_back(client, clock, sessionmaker, metered):
    """What was used stays used: budgets read a ledger that deleting a conversation (its
    turns go with it), temporary or not, leaves as it was."""
    me = await register(client)
    kept = (await chat(client, me, "kept")).json()["sessionId"]
    deleted = (await chat(client, me, "deleted for good")).json()["sessionId"]
    r = await client.post(
        "/api/chat",
        json={"messages": [{"role": "user", "content": "temporary"}], "temporary": True},
        headers=me,
    )
    assert r.status_code == 200, r.text
    temporary = r.json()["sessionId"]
    for sid in (deleted, temporary):
        r = await client.delete(f"/api/sessions/{sid}?permanent=true", headers=me)
        assert r.status_code == 204, r.text
        assert (await client.get(f"/api/sessions/{sid}", headers=me)).status_code == 404
    async with sessionmaker() as s:
        turns = (await s.execute(sa.text("SELECT count(*) FROM chat_turn"))).scalar_one()
    assert turns == 1  # only the kept conversation's turn is left

    day, month = (await client.get("/api/me/usage", headers=me)).json()["budgets"]
    assert (day["used"], day["remaining"], month["used"]) == (300, 0, 300)
    r = await chat(client, me, "one more", session_id=kept)
    assert r.status_code == 429 and r.json()["code"] == "quota_exceeded", r.text
    assert r.json()["used"] == 300

    # The next day (UTC) the day's budget starts again; the month still counts them.
    clock.set(_next_midnight(clock.now()))
    assert (await chat(client, me, "a new day", session_id=kept)).status_code == 200
    day, month = (await client.get("/api/me/usage", headers=me)).json()["budgets"]
    assert day["used"] == 100
    if month["used"] != 100:  # unless the new day began a new month
        assert month["used"] == 400


async def test_the_ledger_follows_every_change_of_a_turns_tokens(client, sessionmaker, metered):
    """The trigger adds what a turn's tokens changed by, on insert and on each update."""
    me = await register(client)
    await chat(client, me, "hello")
    user_id = (await client.get("/users/me", headers=me)).json()["id"]

    async def ledger() -> int:
        async with sessionmaker() as s:
            return int(
                (
                    await s.execute(
                        sa.text(
                            "SELECT coalesce(sum(tokens), 0) FROM usage_day WHERE user_id = :u"
                        ),
                        {"u": user_id},
                    )
                ).scalar_one()
            )

    assert await ledger() == 100
    async with sessionmaker() as s, s.begin():
        await s.execute(
            sa.text(
                "UPDATE chat_turn SET completion_tokens = completion_tokens + 25 WHERE user_id = :u"
            ),
            {"u": user_id},
        )
        await s.execute(
            sa.text("UPDATE chat_turn SET partial_reply = 'x' WHERE user_id = :u"), {"u": user_id}
        )
    assert await ledger() == 125
    async with sessionmaker() as s, s.begin():
        await s.execute(sa.text("DELETE FROM chat_turn WHERE user_id = :u"), {"u": user_id})
    assert await ledger() == 125
