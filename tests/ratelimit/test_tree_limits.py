"""Edits and regenerated replies count against the `chat` limit like any message."""

from __future__ import annotations

import pytest

from tests.ratelimit.conftest import chat_body, new_user
from tests.ratelimit.test_api import message_count

pytestmark = [pytest.mark.redis, pytest.mark.storage]


async def test_edits_and_regenerates_are_chat_messages_to_the_limit(app, client, sessionmaker):
    _, user = await new_user(app)
    r = await client.post("/api/chat", json=chat_body("hello"), headers=user)
    assert r.status_code == 200, r.text
    sid = r.json()["sessionId"]
    edit = {**chat_body("hi", sid), "editSeq": 1}
    r = await client.post("/api/chat", json=edit, headers=user)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/sessions/{sid}/messages/4/regenerate", headers=user)
    assert r.status_code == 200, r.text
    assert r.headers["RateLimit"].startswith('"chat-minute";r=0')

    stored = await message_count(sessionmaker)
    for method, url, body in (
        ("POST", f"/api/sessions/{sid}/messages/4/regenerate", None),
        ("POST", "/api/chat", edit),
    ):
        r = await client.request(method, url, json=body, headers=user)
        assert r.status_code == 429 and r.json()["policy"] == "chat"
    assert await message_count(sessionmaker) == stored == 5
