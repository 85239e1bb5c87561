"""Share links: a read-only snapshot of a conversation that anyone with the link can open,
refreshed by sharing again, ended by revoking, expiry or the trash."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import TEST_PASSWORD, chat, register

pytestmark = pytest.mark.storage

DAY = 86_400


async def _start(client, headers, text, clock) -> str:
    clock.advance(1)
    r = await chat(client, headers, text)
    assert r.status_code == 200, r.text
    return r.json()["sessionId"]


async def _say(client, headers, session_id, text, clock) -> None:
    clock.advance(1)
    r = await chat(client, headers, text, session_id=session_id)
    assert r.status_code == 200, r.text


async def _share(client, headers, session_id, **body) -> httpx.Response:
    return await client.post(f"/api/sessions/{session_id}/share", json=body, headers=headers)


def _token(url: str) -> str:
    match = re.fullmatch(r"http://testserver/s/([A-Za-z0-9_-]+)", url)
    assert match, url
    return match.group(1)


async def _shared(client, token) -> httpx.Response:
    return await client.get(f"/api/shared/{token}")


async def _count(sessionmaker, sql: str, **params) -> int:
    async with sessionmaker() as db:
        return int((await db.execute(sa.text(sql), params)).scalar_one())


async def test_a_shared_conversation_opens_without_sign_in_as_it_was(client, clock):
    me = await register(client, "owner@example.com")
    sid = await _start(client, me, "Plan a picnic by the river", clock)

    r = await _share(client, me, sid, expiresInDays=None)
    assert r.status_code == 201, r.text
    link = r.json()
    token = _token(link["url"])
    assert link["token"] == token
    assert len(token) >= 43  # 32 random bytes
    assert link["expiresAt"] is None

    r = await _shared(client, token)  # no Authorization header: anyone with the link
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert "noindex" in r.headers["x-robots-tag"]
    body = r.json()
    assert set(body) == {"title", "sharedAt", "expiresAt", "messages"}
    assert body["title"] == "Plan a picnic by the river"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    assert body["messages"][0]["content"] == "Plan a picnic by the river"
    assert all(set(m) == {"role", "content", "createdAt"} for m in body["messages"])
    assert sid not in r.text and "owner@example.com" not in r.text

    # The owner sees it in the list, the detail and the summary.
    shares = (await client.get("/api/shares", headers=me)).json()["items"]
    assert [(s["sessionId"], s["url"], s["messageCount"]) for s in shares] == [
        (sid, link["url"], 2)
    ]
    detail = (await client.get(f"/api/sessions/{sid}", headers=me)).json()
    assert detail["shared"] == {"url": link["url"], "expiresAt": None}
    summary = (await client.get("/api/sessions", headers=me)).json()["items"][0]
    assert summary["shared"] == {"url": link["url"], "expiresAt": None}


async def test_the_page_is_read_only_unindexed_and_holds_no_email_or_ids(client, clock):
    me = await register(client, "page-owner@example.com")
    sid = await _start(client, me, "Notes for the garden club", clock)
    user_id = (await client.get("/users/me", headers=me)).json()["id"]
    token = (await _share(client, me, sid)).json()["token"]

    r = await client.get(f"/s/{token}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<meta name="robots" content="noindex' in r.text
    assert "noindex" in r.headers["x-robots-tag"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = r.headers.get_list("content-security-policy")
    assert len(csp) == 1 and "default-src 'none'" in csp[0] and "script" not in csp[0]
    assert "Notes for the garden club" in r.text
    for secret in ("page-owner@example.com", sid, user_id):
        assert secret not in r.text
    assert "<form" not in r.text and "<script" not in r.text and "<textarea" not in r.text


async def test_hostile_text_is_escaped_on_the_page(client, clock):
    me = await register(client)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    sid = await _start(client, me, hostile, clock)
    await client.patch(
        f"/api/sessions/{sid}", json={"title": "</title><script>alert(2)</script>"}, headers=me
    )
    token = (await _share(client, me, sid)).json()["token"]

    page = (await client.get(f"/s/{token}")).text
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    # The JSON gives the text as written.
    body = (await _shared(client, token)).json()
    assert body["messages"][0]["content"] == hostile


async def test_sharing_again_keeps_the_link_and_moves_the_snapshot_forward(
    client, clock, sessionmaker
):
    me = await register(client)
    sid = await _start(client, me, "First question", clock)
    first = (await _share(client, me, sid, expiresInDays=7)).json()
    await _say(client, me, sid, "A later question", clock)
    await client.patch(f"/api/sessions/{sid}", json={"title": "Renamed later"}, headers=me)

    # Until shared again, the link shows the conversation as it was.
    body = (await _shared(client, first["token"])).json()
    assert body["title"] == "First question"
    assert body["messages"][0]["content"] == "First question"
    assert len(body["messages"]) == 2
    page = (await client.get(f"/s/{first['token']}")).text
    assert "A later question" not in page

    clock.advance(60)
    r = await _share(client, me, sid)
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["url"] == first["url"] and again["token"] == first["token"]
    assert again["expiresAt"] == first["expiresAt"]  # left out: kept
    assert again["createdAt"] == first["createdAt"]
    assert again["refreshedAt"] > first["refreshedAt"]
    body = (await _shared(client, first["token"])).json()
    assert body["title"] == "Renamed later"
    assert len(body["messages"]) == 4
    assert body["messages"][2]["content"] == "A later question"
    assert "A later question" in (await client.get(f"/s/{first['token']}")).text

    # A new expiry, counted from now; null means until revoked.
    longer = (await _share(client, me, sid, expiresInDays=30)).json()
    assert longer["token"] == first["token"] and longer["expiresAt"] > first["expiresAt"]
    forever = (await _share(client, me, sid, expiresInDays=None)).json()
    assert forever["token"] == first["token"] and forever["expiresAt"] is None
    assert await _count(sessionmaker, "SELECT count(*) FROM shared_link") == 1


async def test_revoked_unknown_and_malformed_links_are_the_same_404(client, clock):
    me = await register(client)
    sid = await _start(client, me, "Something private", clock)
    token = (await _share(client, me, sid)).json()["token"]

    assert (await client.delete(f"/api/sessions/{sid}/share", headers=me)).status_code == 204
    revoked = await _shared(client, token)
    unknown = await _shared(client, "A" * 43)
    malformed = await _shared(client, "not a token!")
    too_long = await _shared(client, "A" * 300)
    for r in (revoked, unknown, malformed, too_long):
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["cache-control"] == "no-store"
        assert "noindex" in r.headers["x-robots-tag"]
    assert revoked.json() == unknown.json() == malformed.json() == too_long.json()
    assert revoked.json()["code"] == "share_not_found"
    pages = [await client.get(f"/s/{t}") for t in (token, "A" * 43)]
    assert [p.status_code for p in pages] == [404, 404]
    assert pages[0].text == pages[1].text
    assert "Something private" not in pages[0].text
    assert '<meta name="robots" content="noindex' in pages[0].text

    assert (await client.get("/api/shares", headers=me)).json()["items"] == []
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).json()["shared"] is None
    # Revoking twice is fine; sharing again makes a new link, the old one stays dead.
    assert (await client.delete(f"/api/sessions/{sid}/share", headers=me)).status_code == 204
    fresh = await _share(client, me, sid)
    assert fresh.status_code == 201
    assert fresh.json()["token"] != token
    assert (await _shared(client, token)).status_code == 404
    assert (await _shared(client, fresh.json()["token"])).status_code == 200


async def test_an_expired_link_is_a_404_and_sharing_again_makes_a_new_one(client, clock):
    me = await register(client)
    sid = await _start(client, me, "Only for a day", clock)
    link = (await _share(client, me, sid, expiresInDays=1)).json()
    token = link["token"]

    clock.advance(DAY - 5)
    assert (await _shared(client, token)).status_code == 200
    clock.advance(10)
    assert (await _shared(client, token)).status_code == 404
    assert (await client.get(f"/s/{token}")).status_code == 404
    assert (await client.get("/api/shares", headers=me)).json()["items"] == []
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).json()["shared"] is None
    summary = (await client.get("/api/sessions", headers=me)).json()["items"][0]
    assert summary["shared"] is None

    # Sharing again: a new token (the old link never comes back).
    r = await _share(client, me, sid, expiresInDays=7)
    assert r.status_code == 201
    assert r.json()["token"] != token
    assert (await _shared(client, token)).status_code == 404
    assert (await _shared(client, r.json()["token"])).status_code == 200


@pytest.mark.parametrize("bad", [0, 366, -1, "7", 1.5, True, 10**20])
async def test_expiry_out_of_bounds_is_refused(client, clock, bad):
    me = await register(client)
    sid = await _start(client, me, "Bounds", clock)
    r = await _share(client, me, sid, expiresInDays=bad)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "expiresInDays" in r.text
    assert (await client.get("/api/shares", headers=me)).json()["items"] == []


async def test_another_users_conversation_is_a_404_on_every_share_route(client, clock):
    me = await register(client)
    other = await register(client)
    sid = await _start(client, me, "Mine alone", clock)
    token = (await _share(client, me, sid)).json()["token"]

    r = await _share(client, other, sid)
    assert r.status_code == 404 and r.json()["code"] == "session_not_found"
    r = await client.delete(f"/api/sessions/{sid}/share", headers=other)
    assert r.status_code == 404 and r.json()["code"] == "session_not_found"
    missing = await _share(client, other, "s_doesnotexist")
    assert missing.status_code == 404
    assert (await client.get("/api/shares", headers=other)).json()["items"] == []
    # Nothing changed for the owner's link.
    assert (await _shared(client, token)).status_code == 200
    assert len((await client.get("/api/shares", headers=me)).json()["items"]) == 1
    # Signed out: the owner's routes need a sign-in.
    assert (await _share(client, {}, sid)).status_code == 401
    assert (await client.delete(f"/api/sessions/{sid}/share")).status_code == 401
    assert (await client.get("/api/shares")).status_code == 401


async def test_the_trash_revokes_and_a_restore_does_not_bring_the_link_back(client, clock):
    me = await register(client)
    sid = await _start(client, me, "Going to the trash", clock)
    other = await _start(client, me, "Bulk trash", clock)
    token = (await _share(client, me, sid)).json()["token"]
    other_token = (await _share(client, me, other)).json()["token"]

    assert (await client.delete(f"/api/sessions/{sid}", headers=me)).status_code == 204
    assert (await _shared(client, token)).status_code == 404
    assert (await client.get(f"/s/{token}")).status_code == 404
    r = await _share(client, me, sid)
    assert r.status_code == 409 and r.json()["code"] == "session_trashed"

    r = await client.post(
        "/api/sessions/bulk", json={"action": "trash", "ids": [other]}, headers=me
    )
    assert r.status_code == 200, r.text
    assert (await _shared(client, other_token)).status_code == 404

    assert (await client.post(f"/api/sessions/{sid}/restore", headers=me)).status_code == 200
    assert (await _shared(client, token)).status_code == 404
    assert (await client.get(f"/api/sessions/{sid}", headers=me)).json()["shared"] is None


async def test_deleting_for_good_and_deleting_the_account_remove_the_links(
    client, clock, sessionmaker
):
    me = await register(client)
    sid = await _start(client, me, "Delete me for good", clock)
    kept = await _start(client, me, "Kept until the account goes", clock)
    token = (await _share(client, me, sid)).json()["token"]
    kept_token = (await _share(client, me, kept)).json()["token"]
    assert await _count(sessionmaker, "SELECT count(*) FROM shared_link") == 2

    r = await client.delete(f"/api/sessions/{sid}", params={"permanent": "true"}, headers=me)
    assert r.status_code == 204
    assert (await _shared(client, token)).status_code == 404
    assert await _count(sessionmaker, "SELECT count(*) FROM shared_link") == 1

    r = await client.request(
        "DELETE", "/users/me", json={"currentPassword": TEST_PASSWORD}, headers=me
    )
    assert r.status_code == 204
    assert (await _shared(client, kept_token)).status_code == 404
    assert await _count(sessionmaker, "SELECT count(*) FROM shared_link") == 0


async def test_two_shares_at_once_make_one_link(client, clock, sessionmaker):
    me = await register(client)
    sid = await _start(client, me, "Shared twice at once", clock)
    first, second = await asyncio.gather(_share(client, me, sid), _share(client, me, sid))
    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert first.json()["url"] == second.json()["url"]
    assert await _count(sessionmaker, "SELECT count(*) FROM shared_link") == 1
