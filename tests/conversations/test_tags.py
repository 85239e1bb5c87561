"""Pins and tags: pinned conversations come first, tags filter, count, and travel in exports."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.conftest import chat, register

pytestmark = pytest.mark.storage


async def _start(client, headers, text, clock) -> str:
    clock.advance(1)
    r = await chat(client, headers, text)
    assert r.status_code == 200, r.text
    return r.json()["sessionId"]


async def _all_ids(client, headers, **params) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        r = await client.get("/api/sessions", params=query, headers=headers)
        assert r.status_code == 200, r.text
        ids += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return ids


async def test_pinned_first_across_pages(client, clock):
    me = await register(client)
    sids = [await _start(client, me, f"conversation {n}", clock) for n in range(7)]
    newest_first = list(reversed(sids))
    for sid in (sids[1], sids[4]):
        r = await client.patch(f"/api/sessions/{sid}", json={"pinned": True}, headers=me)
        assert r.status_code == 200
        assert r.json()["pinned"] is True
    expected = [sids[4], sids[1]] + [s for s in newest_first if s not in (sids[1], sids[4])]
    for limit in (1, 2, 3, 20):
        assert await _all_ids(client, me, limit=limit) == expected
    await client.patch(f"/api/sessions/{sids[4]}", json={"pinned": False}, headers=me)
    assert (await _all_ids(client, me, limit=2))[:2] == [sids[1], sids[6]]


async def test_tags_are_normalised_limited_filtered_and_counted(client, clock):
    me = await register(client)
    other = await register(client)
    a = await _start(client, me, "alpha", clock)
    b = await _start(client, me, "beta", clock)
    theirs = await _start(client, other, "theirs", clock)
    r = await client.patch(
        f"/api/sessions/{a}", json={"tags": ["Work", " work ", "Q3  Plans"]}, headers=me
    )
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["work", "q3 plans"]
    await client.patch(f"/api/sessions/{b}", json={"tags": ["WORK"]}, headers=me)
    await client.patch(f"/api/sessions/{theirs}", json={"tags": ["work"]}, headers=other)

    assert await _all_ids(client, me, tag="Work") == [b, a]
    assert await _all_ids(client, me, tag="q3 plans") == [a]
    assert await _all_ids(client, me, tag="nothing") == []
    r = await client.get("/api/tags", headers=me)
    assert r.json() == {"tags": [{"tag": "work", "count": 2}, {"tag": "q3 plans", "count": 1}]}

    too_many = await client.patch(
        f"/api/sessions/{a}", json={"tags": [f"t{n}" for n in range(11)]}, headers=me
    )
    assert too_many.status_code == 422
    assert too_many.json()["code"] == "invalid_tag"
    for bad in ("x" * 33, "", "semi;colon"):
        r = await client.patch(f"/api/sessions/{a}", json={"tags": [bad]}, headers=me)
        assert r.status_code == 422, bad
    assert (await client.get(f"/api/sessions/{a}", headers=me)).json()["tags"] == [
        "work",
        "q3 plans",
    ]
    # A trashed conversation's tags are not counted.
    await client.delete(f"/api/sessions/{b}", headers=me)
    counts = (await client.get("/api/tags", headers=me)).json()["tags"]
    assert {"tag": "work", "count": 1} in counts


async def test_bulk_tag_and_untag(client, clock):
    me = await register(client)
    a = await _start(client, me, "alpha", clock)
    b = await _start(client, me, "beta", clock)
    r = await client.post(
        "/api/sessions/bulk", json={"action": "tag", "ids": [a, b], "tags": ["Read"]}, headers=me
    )
    assert r.status_code == 200, r.text
    assert set(await _all_ids(client, me, tag="read")) == {a, b}
    await client.post(
        "/api/sessions/bulk", json={"action": "untag", "ids": [a], "tags": ["read"]}, headers=me
    )
    assert await _all_ids(client, me, tag="read") == [b]


async def test_export_and_import_carry_pins_and_tags(client, clock):
    me = await register(client)
    sid = await _start(client, me, "keep this one", clock)
    await client.patch(
        f"/api/sessions/{sid}", json={"pinned": True, "tags": ["recipes"]}, headers=me
    )
    r = await client.get(f"/api/sessions/{sid}/export", headers=me)
    exported = r.json()["conversation"]
    assert exported["pinned"] is True
    assert exported["tags"] == ["recipes"]
    archive = await client.get("/api/export?format=zip", headers=me)
    doc = json.loads(zipfile.ZipFile(io.BytesIO(archive.content)).read("conversations.json"))
    assert doc["conversations"][0]["tags"] == ["recipes"]

    someone = await register(client)
    r = await client.post("/api/import", content=archive.content, headers=someone)
    assert r.status_code == 200, r.text
    (new_id,) = r.json()["sessions"]
    imported = (await client.get(f"/api/sessions/{new_id}", headers=someone)).json()
    assert imported["pinned"] is True
    assert imported["tags"] == ["recipes"]


async def test_tags_with_emoji_are_kept_and_found(client, clock):
    me = await register(client)
    a = await _start(client, me, "alpha", clock)
    tags = ["🎉 party", "👩‍💻 work", "ideas ✨", "👍🏽"]
    r = await client.patch(f"/api/sessions/{a}", json={"tags": tags}, headers=me)
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == tags
    assert await _all_ids(client, me, tag="👩‍💻 work") == [a]
    for bad in ("semi;colon", "<b>", "a\u0000b"):
        r = await client.patch(f"/api/sessions/{a}", json={"tags": [bad]}, headers=me)
        assert r.status_code == 422, bad
