"""Imported `imageUrl`s: only the importing user's own stored images survive; scripts, data
URLs, outside links and other users' images are dropped."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import chat, register

pytestmark = pytest.mark.storage

ASK_FOR_IMAGE = "Create a Facebook post about Diwali with image"


async def _conversation_with_image(client, headers, clock) -> tuple[str, str]:
    """A conversation whose assistant reply shows a stored image: (session id, image URL)."""
    clock.advance(60)
    r = await chat(client, headers, ASK_FOR_IMAGE)
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    body = (await client.get(f"/api/sessions/{sid}", headers=headers)).json()
    url = next(m["imageUrl"] for m in body["messages"] if m["imageUrl"])
    assert url.startswith("/api/images/")
    return sid, url


async def _export(client, headers, sid) -> dict:
    r = await client.get(f"/api/sessions/{sid}/export?format=json", headers=headers)
    assert r.status_code == 200
    return r.json()


async def _import(client, headers, doc: dict) -> list[str]:
    data = json.dumps(doc).encode()
    r = await client.post("/api/import", files={"file": ("export.json", data)}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["sessions"]


async def _image_urls(client, headers, sid) -> list[str | None]:
    r = await client.get(f"/api/sessions/{sid}", headers=headers)
    assert r.status_code == 200
    return [m["imageUrl"] for m in r.json()["messages"]]


def _document(urls: list[str | None]) -> dict:
    return {
        "format": "chatkeep.conversation",
        "version": 1,
        "conversation": {
            "id": f"elsewhere-{uuid.uuid4()}",
            "title": "Pictures",
            "createdAt": "2026-11-20T10:00:00Z",
            "lastActivityAt": "2026-11-20T10:30:00Z",
            "messageCount": len(urls),
            "messages": [
                {
                    "seq": seq,
                    "role": "assistant" if seq % 2 == 0 else "user",
                    "content": f"message {seq}",
                    "imageUrl": url,
                    "createdAt": "2026-11-20T10:00:00Z",
                }
                for seq, url in enumerate(urls, start=1)
            ],
        },
    }


async def test_hostile_image_urls_are_not_stored(client, clock, sessionmaker):
    alice = await register(client)
    bob = await register(client)
    _, mine = await _conversation_with_image(client, alice, clock)
    _, bobs = await _conversation_with_image(client, bob, clock)
    mine_id = mine.rsplit("/", 1)[1]
    hostile = [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "https://evil.example/pixel.png",
        f"https://evil.example{mine}",
        f"//evil.example{mine}",
        f"{mine}?download=1",
        f"{mine}/../../users/me",
        f" {mine}",
        f"/api/images/{uuid.uuid4()}",  # no such image
        bobs,  # someone else's
        f"/api/images/{mine_id}x",
        "/api/images/not-a-uuid",
    ]
    urls: list[str | None] = [*hostile, mine, f"/api/images/{mine_id.upper()}", None]
    (new_id,) = await _import(client, alice, _document(urls))

    stored = await _image_urls(client, alice, new_id)
    # Alice's own image is kept (in the server's one spelling); nothing else is.
    assert stored == [None] * len(hostile) + [mine, mine, None]
    async with sessionmaker() as db:
        kept = (
            await db.execute(
                sa.text("SELECT image_url FROM chat_message WHERE session_id = :sid"),
                {"sid": new_id},
            )
        ).scalars()
        assert {u for u in kept if u is not None} == {mine}
    # The same file in Bob's account keeps Bob's image and drops Alice's.
    (bobs_copy,) = await _import(client, bob, _document(urls))
    stored = await _image_urls(client, bob, bobs_copy)
    assert [u for u in stored if u is not None] == [bobs]


async def test_own_images_survive_a_round_trip_and_others_do_not(client, clock):
    alice = await register(client)
    bob = await register(client)
    sid, url = await _conversation_with_image(client, alice, clock)
    # A published post keeps the image when the conversation itself is deleted.
    assert (await chat(client, alice, "post it", session_id=sid)).status_code == 200
    exported = await _export(client, alice, sid)
    assert url in [m["imageUrl"] for m in exported["conversation"]["messages"]]
    r = await client.delete(f"/api/sessions/{sid}?permanent=true", headers=alice)
    assert r.status_code == 204
    assert (await client.get(url, headers=alice)).status_code == 200

    (back,) = await _import(client, alice, exported)
    urls = await _image_urls(client, alice, back)
    assert urls == [m["imageUrl"] for m in exported["conversation"]["messages"]]
    assert (await client.get(url, headers=alice)).status_code == 200
    # Exported again, the copy names the same image.
    again = await _export(client, alice, back)
    assert [m["imageUrl"] for m in again["conversation"]["messages"]] == urls

    # Bob holds no such image: his copy has the messages and no image links.
    (bobs,) = await _import(client, bob, exported)
    assert set(await _image_urls(client, bob, bobs)) == {None}
    assert (await client.get(url, headers=bob)).status_code == 404
