"""The drafting flow through POST /api/chat with the built-in assistant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.assistant.builtin import PUBLISHED, QUESTION
from app.conversations.models import ChatMessage
from app.core.clock import FrozenClock
from tests.conftest import chat, login, register

pytestmark = pytest.mark.storage

DIWALI = "Create a Facebook post about Diwali with image"


async def _drafts(client: httpx.AsyncClient, headers: dict[str, str], sid: str) -> list[Any]:
    r = await client.get(f"/api/sessions/{sid}/drafts", headers=headers)
    assert r.status_code == 200, r.text
    drafts: list[Any] = r.json()["drafts"]
    return drafts


async def _meta(sessionmaker: Any, sid: str, seq: int) -> dict[str, Any]:
    async with sessionmaker() as db:
        row = (
            await db.execute(
                sa.select(ChatMessage.meta).where(
                    ChatMessage.session_id == sid,  # type: ignore[arg-type]
                    ChatMessage.seq == seq,  # type: ignore[arg-type]
                )
            )
        ).scalar_one()
    return dict(row)


async def test_draft_publish_regenerate(client: httpx.AsyncClient, sessionmaker: Any) -> None:
    headers = await register(client)

    r = await chat(client, headers, DIWALI)
    assert r.status_code == 200, r.text
    first = r.json()
    sid = first["sessionId"]
    assert first["reply"].endswith(QUESTION)
    assert "Diwali" in first["reply"]
    assert first["imageUrl"].startswith("/api/images/")
    meta = await _meta(sessionmaker, sid, 2)
    assert meta["intent"] == "create_post"
    assert meta["draftVersion"] == 1
    draft_id = meta["draftId"]

    image = await client.get(first["imageUrl"], headers=headers)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert "private" in image.headers["cache-control"]

    (draft,) = await _drafts(client, headers, sid)
    assert draft["id"] == draft_id
    assert draft["status"] == "pending"
    assert draft["platform"] == "facebook"
    assert draft["withImage"] is True
    assert draft["versions"][0]["text"] in first["reply"]

    r = await chat(client, headers, "yes", session_id=sid)
    assert r.status_code == 200, r.text
    assert r.json()["reply"] == PUBLISHED

    posts = (await client.get("/api/posts", headers=headers)).json()["posts"]
    assert len(posts) == 1
    assert posts[0]["draftId"] == draft_id
    assert posts[0]["text"] == draft["versions"][0]["text"]
    assert posts[0]["imageUrl"] == first["imageUrl"]
    assert posts[0]["publisher"] == "local"

    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["reply"].endswith(QUESTION)
    assert "Diwali" in again["reply"]
    assert again["imageUrl"] and again["imageUrl"] != first["imageUrl"]

    old, new = await _drafts(client, headers, sid)
    assert old["status"] == "published"
    assert new["status"] == "pending"
    assert new["parentDraftId"] == old["id"]
    assert new["requestMessageSeq"] == 1  # built from the original request
    assert new["platform"] == "facebook" and new["topic"] == old["topic"]
    assert new["currentVersion"] == 2
    assert new["versions"][0]["text"] != old["versions"][0]["text"]
    meta = await _meta(sessionmaker, sid, 6)
    assert meta == {
        "assistant": "builtin",
        "model": "builtin",
        "intent": "regenerate",
        "draftId": new["id"],
        "draftVersion": 2,
        "platform": "facebook",
        "draftStatus": "pending",
        "imageUrl": again["imageUrl"],
    }
    # The published post is untouched.
    posts = (await client.get("/api/posts", headers=headers)).json()["posts"]
    assert [p["draftId"] for p in posts] == [old["id"]]


async def test_regenerating_a_pending_draft_adds_versions(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    r = await chat(client, headers, "Write a LinkedIn post about our new office")
    sid = r.json()["sessionId"]
    assert r.json()["imageUrl"] is None

    texts = []
    for text in ("try again", "make another version"):
        r = await chat(client, headers, text, session_id=sid)
        assert r.json()["reply"].endswith(QUESTION)
    (draft,) = await _drafts(client, headers, sid)
    assert draft["currentVersion"] == 3
    assert [v["version"] for v in draft["versions"]] == [1, 2, 3]
    assert [v["sourceMessageSeq"] for v in draft["versions"]] == [1, 3, 5]
    texts = [v["text"] for v in draft["versions"]]
    assert len(set(texts)) == 3

    r = await chat(client, headers, "post it", session_id=sid)
    assert r.json()["reply"] == PUBLISHED
    posts = (await client.get("/api/posts", headers=headers)).json()["posts"]
    assert posts[0]["text"] == texts[2]
    assert posts[0]["version"] == 3
    assert posts[0]["platform"] == "linkedin"


async def test_cancel_and_nothing_to_cancel(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    sid = (await chat(client, headers, "Tweet about our summer sale")).json()["sessionId"]

    r = await chat(client, headers, "cancel", session_id=sid)
    assert "cancelled" in r.json()["reply"]
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "cancelled"

    r = await chat(client, headers, "no", session_id=sid)
    assert "nothing to cancel" in r.json()["reply"]
    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] != PUBLISHED
    assert (await client.get("/api/posts", headers=headers)).json()["posts"] == []

    # A cancelled draft can still be written again, from its original request.
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert r.json()["reply"].endswith(QUESTION)
    cancelled, fresh = await _drafts(client, headers, sid)
    assert cancelled["status"] == "cancelled"
    assert fresh["status"] == "pending" and fresh["platform"] == "x"


async def test_new_request_supersedes_the_pending_draft(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    sid = (await chat(client, headers, "Create a Facebook post about Diwali")).json()["sessionId"]
    await chat(client, headers, "Write an Instagram post about our bakery", session_id=sid)
    first, second = await _drafts(client, headers, sid)
    assert first["status"] == "superseded"
    assert second["status"] == "pending" and second["platform"] == "instagram"

    await chat(client, headers, "yes", session_id=sid)
    posts = (await client.get("/api/posts", headers=headers)).json()["posts"]
    assert [p["platform"] for p in posts] == ["instagram"]


async def test_unclear_messages_ask_instead_of_acting(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    r = await chat(client, headers, "regenerate the previous post")
    sid = r.json()["sessionId"]
    assert "no previous post" in r.json()["reply"].lower()
    assert await _drafts(client, headers, sid) == []

    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] != PUBLISHED

    await chat(client, headers, DIWALI, session_id=sid)
    r = await chat(client, headers, "hmm, not sure about that one", session_id=sid)
    reply = r.json()["reply"]
    assert "?" in reply and reply != PUBLISHED
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "pending"

    r = await chat(client, headers, "yes but cancel it", session_id=sid)
    assert r.json()["reply"] != PUBLISHED
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "pending"


async def test_help_and_small_talk_describe_capabilities(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    r = await chat(client, headers, "what can you do?")
    assert "Create a Facebook post about Diwali with image" in r.json()["reply"]
    sid = r.json()["sessionId"]
    r = await chat(client, headers, "hello there", session_id=sid)
    assert "post" in r.json()["reply"].lower()
    assert await _drafts(client, headers, sid) == []


async def test_context_is_kept_with_the_draft(client: httpx.AsyncClient) -> None:
    headers = await register(client)
    ctx = "We are Acme Bakery, playful tone"
    r = await chat(client, headers, "Create a Facebook post about Diwali", context=ctx)
    sid = r.json()["sessionId"]
    assert "Acme Bakery" in r.json()["reply"]
    # Later turns send no context: the regenerated draft still uses the original one.
    await chat(client, headers, "yes", session_id=sid)
    r = await chat(client, headers, "regenerate the previous post", session_id=sid)
    assert "Acme Bakery" in r.json()["reply"]
    drafts = await _drafts(client, headers, sid)
    assert [d["context"] for d in drafts] == [ctx, ctx]


async def test_ledger_survives_archive_restore_and_another_login(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    email = "ledger-owner@example.com"
    headers = await register(client, email)
    sid = (await chat(client, headers, DIWALI)).json()["sessionId"]
    await chat(client, headers, "yes", session_id=sid)
    for i in range(6):
        await chat(client, headers, f"what can you do? ({i})", session_id=sid)

    r = await client.post(f"/api/sessions/{sid}/archive", headers=headers)
    assert r.status_code == 200, r.text
    other_login = await login(client, email)
    assert other_login != headers
    r = await client.post(f"/api/sessions/{sid}/restore", headers=other_login)
    assert r.status_code == 200, r.text

    r = await chat(client, other_login, "regenerate the previous post", session_id=sid)
    assert r.json()["sessionId"] == sid
    assert r.json()["reply"].endswith(QUESTION)
    assert "Diwali" in r.json()["reply"]
    old, new = await _drafts(client, headers, sid)
    assert new["parentDraftId"] == old["id"]
    assert new["requestMessageSeq"] == 1
    assert new["withImage"] is True
    assert r.json()["imageUrl"]

    clock.advance(5)  # the second post is published later than the first
    r = await chat(client, headers, "publish", session_id=sid)
    assert r.json()["reply"] == PUBLISHED
    posts = (await client.get("/api/posts", headers=other_login)).json()["posts"]
    assert [p["draftId"] for p in posts] == [new["id"], old["id"]]  # newest first


async def test_another_user_sees_none_of_it(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    r = await chat(client, owner, DIWALI)
    sid, image_url = r.json()["sessionId"], r.json()["imageUrl"]
    await chat(client, owner, "yes", session_id=sid)

    stranger = await register(client)
    assert (await client.get(f"/api/sessions/{sid}/drafts", headers=stranger)).status_code == 404
    r = await client.get(image_url, headers=stranger)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    missing = await client.get("/api/images/00000000-0000-0000-0000-000000000000", headers=stranger)
    assert missing.json()["code"] == r.json()["code"] == "image_not_found"
    assert (await client.get("/api/images/not-a-uuid", headers=stranger)).status_code == 404
    assert (await client.get("/api/posts", headers=stranger)).json()["posts"] == []
    # Naming the owner's session starts a new one for the stranger: no drafts to publish.
    r = await chat(client, stranger, "regenerate the previous post", session_id=sid)
    assert r.json()["sessionId"] != sid
    assert (await client.get(image_url)).status_code == 401


async def test_the_offline_assistant_is_honest_about_questions(
    client: httpx.AsyncClient,
) -> None:
    """A general question is not a draft to post; the built-in says what it is, and a
    draft that waits keeps waiting."""
    headers = await register(client)
    r = await chat(client, headers, "What time is it in Tokyo?")
    reply = r.json()["reply"]
    assert "built-in assistant" in reply and "administrator can connect a language model" in reply
    # Configuration is an administrator's business: no setting's name reaches a user.
    assert "ASSISTANT_BACKEND" not in reply and "LLM_" not in reply
    assert QUESTION not in reply and "post this" not in reply
    sid = r.json()["sessionId"]

    r = await chat(client, headers, DIWALI, session_id=sid)
    assert r.json()["reply"].endswith(QUESTION)
    r = await chat(client, headers, "How long should a Facebook post be?", session_id=sid)
    assert "built-in assistant" in r.json()["reply"]
    assert "Your draft is still waiting" in r.json()["reply"]
    (draft,) = await _drafts(client, headers, sid)
    assert draft["status"] == "pending"
    r = await chat(client, headers, "yes", session_id=sid)
    assert r.json()["reply"] == PUBLISHED


@pytest.mark.parametrize(
    "text", ["दिवाली के बारे में एक पोस्ट बनाओ", "اكتب منشورا عن رمضان", "写一篇关于春节的帖子"]
)
async def test_requests_in_other_languages_get_an_honest_answer(
    client: httpx.AsyncClient, text: str
) -> None:
    headers = await register(client)
    reply = (await chat(client, headers, text)).json()["reply"]
    assert "I'm not sure what you'd like me to do" not in reply
    assert "in every language" in reply and "language model" in reply
