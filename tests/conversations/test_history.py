"""History: browse, search, rename, restore, archive and delete, as a client sees them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.history import repository as history_sql
from app.history import service as history
from tests.assistants import RecordingAssistant
from tests.conftest import chat, register

pytestmark = pytest.mark.storage

MISSING_ID = "session_1700000000000_AAAAAAAAAAAAAAAAAAAAAAAA"


async def _start(client, headers, text, clock=None) -> str:
    if clock is not None:
        clock.advance(1)
    r = await chat(client, headers, text)
    assert r.status_code == 200, r.text
    return r.json()["sessionId"]


async def _all_pages(client, headers, **params) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        r = await client.get("/api/sessions", params=query, headers=headers)
        assert r.status_code == 200, r.text
        items.extend(r.json()["items"])
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return items


async def test_list_is_newest_activity_first_with_preview_and_counts(client, clock, app):
    app.state.assistant = RecordingAssistant()
    headers = await register(client)
    older = await _start(client, headers, "Plan a trip to Lisbon", clock)
    newer = await _start(client, headers, "Write a haiku about rain", clock)
    clock.advance(1)
    assert (
        await chat(client, headers, "and another one please", session_id=older)
    ).status_code == 200

    r = await client.get("/api/sessions", headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["nextCursor"] is None
    assert [i["id"] for i in body["items"]] == [older, newer]  # older got the latest activity
    first = body["items"][0]
    assert set(first) == {
        "id",
        "title",
        "status",
        "createdAt",
        "lastActivityAt",
        "archivedAt",
        "trashedAt",
        "purgeAt",
        "pinned",
        "tags",
        "importedFrom",
        "apiClient",
        "model",
        "temporary",
        "messageCount",
        "preview",
        "matchSeq",
        "matchOnPath",
        "snippet",
        "expiresAt",
        "shared",
    }
    assert first["shared"] is None  # not shared
    assert first["importedFrom"] is None  # started here
    assert first["title"] == "Plan a trip to Lisbon"
    assert first["status"] == "active"
    assert first["messageCount"] == 4
    assert first["archivedAt"] is None
    # The preview is the start of the last message (here the assistant's reply).
    assert first["preview"] == "reply to and another one please"
    long_text = "word " * 100
    preview = history.make_preview(long_text)
    assert len(preview) <= history.PREVIEW_CHARS and preview.endswith("…")
    assert long_text.startswith(preview[:-1])


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


async def test_compact_items_carry_what_a_row_shows_in_the_same_order(client, clock):
    headers = await register(client)
    ids = [await _start(client, headers, f"conversation {i}", clock) for i in range(5)]
    shared = ids[1]
    r = await client.post(f"/api/sessions/{shared}/share", json={}, headers=headers)
    assert r.status_code == 201, r.text
    tagged = await client.patch(
        f"/api/sessions/{ids[2]}", json={"tags": ["work"], "pinned": True}, headers=headers
    )
    assert tagged.status_code == 200

    full = (await client.get("/api/sessions?limit=100", headers=headers)).json()
    compact = []
    cursor = None
    while True:  # two items a page: the cursor of a compact page pages on
        params = {"limit": 2, "compact": "true", **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/sessions", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["now"]
        compact.extend(page["items"])
        cursor = page.get("nextCursor")
        if cursor is None:
            assert "nextCursor" not in page  # null fields are left out
            break
    assert [i["id"] for i in compact] == [i["id"] for i in full["items"]]
    for slim, whole in zip(compact, full["items"], strict=True):
        assert not set(slim) & {"createdAt", "trashedAt", "model", "temporary"}
        assert None not in slim.values()
        assert _without_nulls({k: v for k, v in whole.items() if k in slim}) == slim
        assert slim["preview"] and slim["messageCount"] == 2 and "expiresAt" in slim
    by_id = {i["id"]: i for i in compact}
    assert by_id[shared]["shared"]["url"].startswith("http")  # no expiry: expiresAt left out
    assert "shared" not in by_id[ids[0]]
    assert by_id[ids[2]]["tags"] == ["work"] and by_id[ids[2]]["pinned"] is True
    assert by_id[ids[0]]["tags"] == [] and by_id[ids[0]]["pinned"] is False


async def test_pages_have_no_duplicates_or_gaps_while_sessions_arrive(client, clock):
    headers = await register(client)
    original: list[str] = []
    for i in range(12):
        original.append(await _start(client, headers, f"original {i}", clock))
    # Several sessions with the very same activity time: the id breaks the tie.
    for i in range(5):
        original.append(await _start(client, headers, f"same instant {i}"))
    expected_order = [
        i["id"]
        for i in (await client.get("/api/sessions?limit=100", headers=headers)).json()["items"]
    ]
    assert sorted(expected_order) == sorted(original)

    seen: list[str] = []
    cursor = None
    arrivals: list[str] = []
    while True:
        params = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/api/sessions", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 4
        seen.extend(i["id"] for i in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
        # New conversations start between page fetches.
        arrivals.append(await _start(client, headers, f"arrived {len(arrivals)}", clock))
        arrivals.append(await _start(client, headers, f"arrived too {len(arrivals)}"))

    assert seen == expected_order  # every original session once, in order, none skipped
    assert not set(arrivals) & set(seen)


async def test_bad_cursor_and_limit_are_422_problems(client):
    headers = await register(client)
    for bad in ("not-a-cursor", "AAAA", history.encode_cursor.__name__, "%%%"):
        r = await client.get("/api/sessions", params={"cursor": bad}, headers=headers)
        assert r.status_code == 422, bad
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "invalid_cursor"
    r = await client.get("/api/sessions", params={"limit": 101}, headers=headers)
    assert r.status_code == 422
    r = await client.get("/api/sessions", params={"status": "deleted"}, headers=headers)
    assert r.status_code == 422


async def test_status_filter(client, clock):
    headers = await register(client)
    kept = await _start(client, headers, "still going", clock)
    gone = await _start(client, headers, "put away", clock)
    assert (await client.post(f"/api/sessions/{gone}/archive", headers=headers)).status_code == 200

    active = (await client.get("/api/sessions?status=active", headers=headers)).json()["items"]
    archived = (await client.get("/api/sessions?status=archived", headers=headers)).json()["items"]
    everything = (await client.get("/api/sessions?status=all", headers=headers)).json()["items"]
    assert [i["id"] for i in active] == [kept]
    assert [i["id"] for i in archived] == [gone]
    assert archived[0]["status"] == "archived" and archived[0]["archivedAt"] is not None
    assert {i["id"] for i in everything} == {kept, gone}


async def test_active_ones_say_when_they_expire_against_the_servers_clock(client, clock, settings):
    headers = await register(client)
    kept = await _start(client, headers, "still going", clock)
    kept_at = clock.now()
    gone = await _start(client, headers, "put away", clock)
    binned = await _start(client, headers, "thrown out", clock)
    assert (await client.post(f"/api/sessions/{gone}/archive", headers=headers)).status_code == 200
    assert (await client.delete(f"/api/sessions/{binned}", headers=headers)).status_code == 204
    clock.advance(600)

    body = (await client.get("/api/sessions?status=all", headers=headers)).json()
    assert datetime.fromisoformat(body["now"]) == clock.now()
    by_id = {i["id"]: i for i in body["items"]}
    active = by_id[kept]
    expires = datetime.fromisoformat(active["expiresAt"])
    last = datetime.fromisoformat(active["lastActivityAt"])
    assert expires - last == timedelta(seconds=settings.session_ttl_seconds)
    assert last == kept_at
    assert expires - clock.now() == timedelta(seconds=settings.session_ttl_seconds - 602)
    assert by_id[gone]["expiresAt"] is None
    trash = (await client.get("/api/sessions?status=trash", headers=headers)).json()["items"]
    assert [i["id"] for i in trash] == [binned] and trash[0]["expiresAt"] is None

    # A new message moves the expiry on.
    clock.advance(60)
    assert (await chat(client, headers, "one more", session_id=kept)).status_code == 200
    again = (await client.get("/api/sessions?status=active", headers=headers)).json()["items"]
    assert datetime.fromisoformat(again[0]["expiresAt"]) == clock.now() + timedelta(
        seconds=settings.session_ttl_seconds
    )


@pytest.fixture(params=["estimated", "index", "scan", "scan-then-index"])
def search_plan(request, monkeypatch):
    """Runs a search test with the planner's choice, and with each way of searching forced:
    GIN indexes only; a scan of the sessions in order that covers them all; a scan of a
    window too short for a page, finished from the GIN indexes."""
    if request.param == "index":
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_SHARE", 2.0)
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_TITLE_SHARE", 2.0)
    elif request.param.startswith("scan"):
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_SHARE", 0.0)
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MIN_TITLE_SHARE", 0.0)
    if request.param == "scan-then-index":
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MESSAGES", 1)
        monkeypatch.setattr(history_sql, "SEARCH_SCAN_MAX_SESSIONS", 2)
    return request.param


async def test_search_finds_words_in_archived_message_content_of_own_sessions_only(
    client, clock, search_plan
):
    alice = await register(client)
    bob = await register(client)
    target = await _start(client, alice, "Recipe ideas", clock)
    clock.advance(1)
    await chat(client, alice, "Something with Kohlrabi and lentils", session_id=target)
    other = await _start(client, alice, "Weekend plans", clock)
    assert (await client.post(f"/api/sessions/{target}/archive", headers=alice)).status_code == 200
    bobs = await _start(client, bob, "I also like kohlrabi", clock)

    found = await _all_pages(client, alice, q="kohlrabi")
    assert [i["id"] for i in found] == [target]  # archived, matched in a message, case-insensitive
    assert found[0]["status"] == "archived"
    assert bobs not in {i["id"] for i in found}
    assert [i["id"] for i in await _all_pages(client, bob, q="kohlrabi")] == [bobs]

    # Titles are searched too; several words must all match; quoted phrases work.
    assert [i["id"] for i in await _all_pages(client, alice, q="weekend")] == [other]
    assert [i["id"] for i in await _all_pages(client, alice, q="kohlrabi lentils")] == [target]
    assert await _all_pages(client, alice, q='"lentils kohlrabi"') == []
    assert await _all_pages(client, alice, q="kohlrabi weekend") == []
    # Search combines with the status filter.
    assert await _all_pages(client, alice, q="kohlrabi", status="active") == []
    # Any script: 'simple' search needs no language.
    cyr = await _start(client, alice, "Напиши пост про Дивали", clock)
    assert [i["id"] for i in await _all_pages(client, alice, q="дивали")] == [cyr]
    # Punctuation alone matches nothing and is no error.
    assert await _all_pages(client, alice, q="!!! ???") == []


async def test_search_finds_word_prefixes_chinese_japanese_and_emoji(client, clock, search_plan):
    me = await register(client)
    bread = await _start(client, me, "Baking notes", clock)
    clock.advance(1)
    await chat(client, me, "My sourdough starter smells of 🍎 apples", session_id=bread)
    tomato = await _start(client, me, "晚饭吃番茄炒蛋吗 🍅", clock)
    kyoto = await _start(client, me, "Kyoto京都旅行の計画", clock)
    clock.advance(1)
    await chat(client, me, "カレーライスのレシピ", session_id=kyoto)

    async def found(q: str) -> list[str]:
        return [i["id"] for i in await _all_pages(client, me, q=q)]

    assert await found("sourd") == [bread]  # the start of a word, in a message
    assert await found("SOURDOUGH") == [bread]
    assert await found("ourdough") == []  # the middle of a word is not a prefix
    assert await found("bak") == [bread]  # the start of a title word
    assert await found("炒蛋") == [tomato]  # inside a run of Chinese, in the title
    assert await found("京都") == [kyoto]
    assert await found("レシピ") == [kyoto]  # Japanese inside a message
    assert await found("🍅") == [tomato]
    assert await found("🍎") == [bread]
    assert await found("sourd 🍎") == [bread]  # both in one message
    assert await found("sourd 🍅") == []
    assert await found("sourd -🍎") == []
    assert await found("🍌") == []
    hyphen = await _start(client, me, "A well-known trick", clock)
    assert await found("well-known") == [hyphen]
    assert await found("well-kn") == [hyphen]
    assert await found('"known trick"') == [hyphen]


async def test_search_results_say_where_they_matched(client, clock):
    me = await register(client)
    sid = await _start(client, me, "Bread", clock)
    for text in ("first a question about rye", "then one about SOURDOUGH hydration and sourdough"):
        clock.advance(1)
        await chat(client, me, text, session_id=sid)
    long_one = await _start(client, me, "word " * 60 + "番茄炒蛋 at the end", clock)

    [hit] = await _all_pages(client, me, q="sourd")
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    [message] = [m for m in detail["messages"] if m["seq"] == hit["matchSeq"]]
    assert message["content"].startswith("then one about SOURDOUGH")
    text = hit["snippet"]["text"]
    assert [text[a:b] for a, b in hit["snippet"]["highlights"]] == ["SOURD", "sourd"]

    [hit] = await _all_pages(client, me, q="炒蛋")
    assert hit["id"] == long_one and hit["matchSeq"] == 1
    text = hit["snippet"]["text"]
    assert text.startswith("…") and len(text) <= 170
    assert [text[a:b] for a, b in hit["snippet"]["highlights"]] == ["炒蛋"]

    r = await client.patch(f"/api/sessions/{sid}", json={"title": "Weekend loaves"}, headers=me)
    assert r.status_code == 200
    [hit] = await _all_pages(client, me, q="loav")  # the title alone matched
    assert hit["id"] == sid and hit["matchSeq"] is None
    assert hit["snippet"] == {"text": "Weekend loaves", "highlights": [[8, 12]]}
    listed = (await client.get("/api/sessions", headers=me)).json()["items"]
    assert all(i["snippet"] is None and i["matchSeq"] is None for i in listed)


async def test_search_pages_through_many_matches(client, clock, search_plan):
    headers = await register(client)
    ids = [await _start(client, headers, f"common topic number {i}", clock) for i in range(7)]
    await _start(client, headers, "unrelated", clock)
    found = await _all_pages(client, headers, q="topic", limit=3)
    assert [i["id"] for i in found] == list(reversed(ids))


async def test_rename(client, clock):
    headers = await register(client)
    sid = await _start(client, headers, "first words", clock)
    r = await client.patch(
        f"/api/sessions/{sid}", json={"title": "  Trip   planning \n"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Trip planning"
    assert (await client.get(f"/api/sessions/{sid}", headers=headers)).json()[
        "title"
    ] == "Trip planning"
    # The new title is searchable.
    assert [i["id"] for i in await _all_pages(client, headers, q="planning")] == [sid]

    for bad in ("", "   ", "x" * 201):
        r = await client.patch(f"/api/sessions/{sid}", json={"title": bad}, headers=headers)
        assert r.status_code == 422, bad
    r = await client.patch(f"/api/sessions/{sid}", json={"title": "y" * 200}, headers=headers)
    assert r.status_code == 200


async def test_every_route_hides_other_users_sessions_like_missing_ones(client, clock):
    owner = await register(client)
    intruder = await register(client)
    sid = await _start(client, owner, "private thoughts", clock)
    routes = [
        ("GET", "/api/sessions/{}", None),
        ("PATCH", "/api/sessions/{}", {"title": "mine now"}),
        ("POST", "/api/sessions/{}/restore", None),
        ("POST", "/api/sessions/{}/archive", None),
        ("DELETE", "/api/sessions/{}", None),
    ]
    for method, path, body in routes:
        theirs = await client.request(method, path.format(sid), json=body, headers=intruder)
        missing = await client.request(method, path.format(MISSING_ID), json=body, headers=intruder)
        assert theirs.status_code == missing.status_code == 404, (method, path)
        assert theirs.json() == missing.json()
    # The intruder's list and search do not see it, and nothing changed for the owner.
    assert (await client.get("/api/sessions", headers=intruder)).json()["items"] == []
    assert (await client.get("/api/sessions?q=private", headers=intruder)).json()["items"] == []
    r = await client.post("/api/sessions/restore", json={"ids": [sid]}, headers=intruder)
    assert r.json() == {"restored": [], "notFound": [sid]}
    mine = (await client.get(f"/api/sessions/{sid}", headers=owner)).json()
    assert mine["title"] == "private thoughts"
    assert mine["status"] == "active"
    assert mine["messageCount"] == 2


async def test_restore_then_continue_the_conversation(client, clock, settings, app):
    recorder = RecordingAssistant()
    app.state.assistant = recorder
    headers = await register(client)
    sid = await _start(client, headers, "Draft a toast for my sister's wedding", clock)
    # Left alone past the session lifetime: the next chat would have started a new session.
    clock.advance(settings.session_ttl_seconds + 60)
    r = await client.post(f"/api/sessions/{sid}/archive", headers=headers)
    assert r.json()["status"] == "archived"
    archived_at = r.json()["archivedAt"]
    assert archived_at is not None

    clock.advance(10)
    r = await client.post(f"/api/sessions/{sid}/restore", headers=headers)
    assert r.status_code == 200
    restored = r.json()
    assert restored["status"] == "active"
    assert restored["archivedAt"] is None
    assert restored["messageCount"] == 2
    assert restored["lastActivityAt"] > archived_at  # restoring counts as activity

    r = await chat(client, headers, "make it funnier", session_id=sid)
    assert r.status_code == 200
    assert r.json()["sessionId"] == sid
    assert "expiredSessionId" not in r.json()
    # The assistant was given the old conversation as history.
    assert [m.content for m in recorder.turns[-1].history] == [
        "Draft a toast for my sister's wedding",
        "reply to Draft a toast for my sister's wedding",
    ]
    detail = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert [m["seq"] for m in detail["messages"]] == [1, 2, 3, 4]
    assert detail["messages"][2]["content"] == "make it funnier"

    # Restoring an active session is a harmless no-op with the same shape.
    again = await client.post(f"/api/sessions/{sid}/restore", headers=headers)
    assert again.status_code == 200
    assert again.json()["status"] == "active"
    assert again.json()["messageCount"] == 4


async def test_archive_is_idempotent_and_keeps_first_archive_time(client, clock):
    headers = await register(client)
    sid = await _start(client, headers, "hello", clock)
    first = (await client.post(f"/api/sessions/{sid}/archive", headers=headers)).json()
    clock.advance(100)
    second = await client.post(f"/api/sessions/{sid}/archive", headers=headers)
    assert second.status_code == 200
    assert second.json()["archivedAt"] == first["archivedAt"]


async def test_permanent_delete_removes_the_session_and_its_messages(client, clock, sessionmaker):
    headers = await register(client)
    sid = await _start(client, headers, "forget me", clock)
    keep = await _start(client, headers, "keep me", clock)
    r = await client.delete(f"/api/sessions/{sid}?permanent=true", headers=headers)
    assert r.status_code == 204
    assert r.content == b""
    assert (await client.get(f"/api/sessions/{sid}", headers=headers)).status_code == 404
    assert (await client.delete(f"/api/sessions/{sid}", headers=headers)).status_code == 404
    r = await client.get("/api/sessions", params={"status": "trash"}, headers=headers)
    assert r.json()["items"] == []
    assert [
        i["id"] for i in (await client.get("/api/sessions", headers=headers)).json()["items"]
    ] == [keep]
    async with sessionmaker() as db:
        left = (
            await db.execute(
                sa.text("SELECT count(*) FROM chat_message WHERE session_id = :s"), {"s": sid}
            )
        ).scalar_one()
    assert left == 0


async def test_archive_all_and_bulk_restore(client, clock):
    headers = await register(client)
    other = await register(client)
    ids = [await _start(client, headers, f"conversation {i}", clock) for i in range(4)]
    theirs = await _start(client, other, "not yours", clock)

    r = await client.post("/api/sessions/archive-all", headers=headers)
    assert r.status_code == 200
    assert r.json() == {"archived": 4}
    assert (await client.get("/api/sessions?status=active", headers=headers)).json()["items"] == []
    # The other user's session was not touched.
    assert (await client.get(f"/api/sessions/{theirs}", headers=other)).json()["status"] == "active"
    assert (await client.post("/api/sessions/archive-all", headers=headers)).json() == {
        "archived": 0
    }

    clock.advance(5)
    wanted = [ids[0], MISSING_ID, ids[2], theirs, ids[0]]
    r = await client.post("/api/sessions/restore", json={"ids": wanted}, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"restored": [ids[0], ids[2]], "notFound": [MISSING_ID, theirs]}
    active = (await client.get("/api/sessions?status=active", headers=headers)).json()["items"]
    assert {i["id"] for i in active} == {ids[0], ids[2]}
    assert all(i["archivedAt"] is None for i in active)

    too_many = {"ids": [MISSING_ID] * 101}
    assert (
        await client.post("/api/sessions/restore", json=too_many, headers=headers)
    ).status_code == 422
    assert (
        await client.post("/api/sessions/restore", json={"ids": []}, headers=headers)
    ).status_code == 422


async def test_list_sessions_service_is_callable_directly(client, clock, sessionmaker):
    headers = await register(client)
    sid = await _start(client, headers, "service level", clock)
    me = (await client.get("/users/me", headers=headers)).json()
    import uuid

    async with sessionmaker() as db:
        page = await history.list_sessions(session=db, user_id=uuid.UUID(me["id"]), q="level")
    assert [i.id for i in page.items] == [sid]
    assert page.next_cursor is None
